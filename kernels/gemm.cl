/* Dense matrix products, register-blocked like conv2d.cl, and the transpose they need.
 *
 * matmul:     C[m, N] = act(A[m, K] . B[K, N] + bias)        (Dense forward, Dense dx)
 * matmul_tn:  C[M, N] = A[k, M]^T . B[k, N], k cut in parts  (Dense d kernel)
 * transpose:  dst[b, j, i] = src[b, i, j] for matrices of TR x TC (Dense and conv2d dx)
 *
 * Sizes (-D): the weight's M/K and N; the batch-dependent size (m rows of matmul, k reduction of
 * matmul_tn) is an argument, so one program serves every batch size. Tiling (-D): MR rows per
 * work-item, VW, NV (NR = VW * NV columns, N % NR == 0); epilogue (-D): HAS_BIAS, ACT_<NAME>.
 * Launch: dim 0 column blocks, dim 1 row blocks, dim 2 (matmul_tn) parts of the reduction.
 * GPUs (-D LOCAL_TILE=1 TX TY KT): matmul stages its operands in local memory (tile.h).
 */
#include "tile.h"

#ifdef MATMUL
#if LOCAL_TILE
#define KDIM K
#define A_ELEM(m, k) ((m) < M && (k) < K ? a[(m) * K + (k)] : 0.0f)
#define B_ELEM(k, n) ((k) < K && (n) < N ? b[(k) * N + (n)] : 0.0f)
#endif

__kernel void matmul(__global const float *restrict a, __global const float *restrict b,
                     __global const float *restrict bias, __global float *restrict c, int M)
{
    const int n0 = get_global_id(0) * NR;
    const int m0 = get_global_id(1) * MR;
    floatV acc[MR][NV];
    zero_block(acc);
#if LOCAL_TILE
    TILED_GEMM(acc)
#else
    __global const float *arow[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        arow[r] = a + min(m0 + r, M - 1) * K; /* rows past the end repeat the last; not stored */
    gemm_steps(acc, arow, b + n0, K, N);
#endif
    store_block(acc, bias, c, m0, n0, M, N);
}
#endif

#ifdef MATMUL_TN
__kernel void matmul_tn(__global const float *restrict a, __global const float *restrict b,
                        __global float *restrict c, int K)
{
    const int n0 = get_global_id(0) * NR;
    const int m0 = get_global_id(1) * MR;
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

/* One work-item per element of dst; -D TR TC (rows and columns of each source matrix). */
#ifdef TRANSPOSE
__kernel void transpose(__global const float *restrict src, __global float *restrict dst)
{
    const int i = get_global_id(0); /* source row */
    const int j = get_global_id(1); /* source column */
    const int b = get_global_id(2);
    dst[(b * TC + j) * TR + i] = src[(b * TR + i) * TC + j];
}
#endif
