/* Dense matrix products, register-blocked like conv2d.cl, and the transpose they need.
 *
 * matmul:     C[m, N] = act(A[m, K] . B[K, N] + bias [+ R])  (Dense forward, Dense dx)
 * matmul_tn:  C[M, N] = A[k, M]^T . B[k, N], k cut in parts  (Dense d kernel)
 * transpose:  dst[b, j, i] = src[b, i, j] for matrices of TR x TC (Dense and conv2d dx)
 *
 * Sizes (-D): the weight's M/K and N; the batch-dependent size (m rows of matmul, k reduction of
 * matmul_tn) is an argument, so one program serves every batch size. Tiling (-D): MR rows per
 * work-item, VW, NV (NR = VW * NV columns, N % NR == 0); epilogue (-D): HAS_BIAS, HAS_RESIDUAL (R, a last argument: common.h), ACT_<NAME>.
 * Launch: dim 0 row blocks, dim 1 column blocks, dim 2 (matmul_tn) parts of the reduction
 * (tile.h: BLOCK_ROW, BLOCK_COL). GPUs (-D LOCAL_TILE=1 TX TY KT): matmul stages its operands in
 * local memory (tile.h). transpose: one dimension over the elements.
 */
#include "tile.h"

#ifdef MATMUL
#if LOCAL_TILE
#define KDIM K
#define A_ELEM(m, k) ((m) < M && (k) < K ? a[(m) * K + (k)] : 0.0f)
#define B_ELEM(k, n) ((k) < K && (n) < N ? b[(k) * N + (n)] : 0.0f)
#endif

__kernel void matmul(__global const float *restrict a, __global const float *restrict b,
                     __global const float *restrict bias, __global float *restrict c, int M
                     RESIDUAL_PARAM)
{
    const int m0 = BLOCK_ROW(), n0 = BLOCK_COL();
    floatV acc[MR][NV];
    zero_block(acc);
#if LOCAL_TILE
    TILED_GEMM(acc)
#else
    gemm_block(acc, a, b, m0, n0, M, K, N);
#endif
    store_output(acc, bias, RESIDUAL, c, m0, n0, M, N);
}
#endif

#ifdef MATMUL_TN
__kernel void matmul_tn(__global const float *restrict a, __global const float *restrict b,
                        __global float *restrict c, int K)
{
    const int m0 = BLOCK_ROW(), n0 = BLOCK_COL();
    const int part = get_global_id(2);
    const int parts = get_global_size(2);
    const int k_begin = part_begin(K, part, parts), k_end = part_begin(K, part + 1, parts);
    int col[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        col[r] = min(m0 + r, M - 1);
    floatV acc[MR][NV];
    zero_block(acc);
    for (int k = k_begin; k < k_end; k++) {
        floatV bk[NV];
        float ak[MR];
        load_row(bk, b + k * N + n0);
#pragma unroll
        for (int r = 0; r < MR; r++)
            ak[r] = a[k * M + col[r]];
        rank1_update(acc, ak, bk);
    }
    store_block(acc, 0, c + part * (M * N), m0, n0, M, N);
}
#endif

/* One work-item per element of src, in one launch dimension (-D TR TC: rows and columns of each
 * source matrix; n elements in all): consecutive work-items read consecutive elements. */
#ifdef TRANSPOSE
__kernel void transpose(__global const float *restrict src, __global float *restrict dst, int n)
{
    const int t = get_global_id(0);
    if (t >= n)
        return;
    const int j = t % TC;        /* source column */
    const int i = (t / TC) % TR; /* source row */
    const int b = t / (TR * TC);
    dst[(b * TC + j) * TR + i] = src[t];
}
#endif
