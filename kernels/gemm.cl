/* Dense matrix products, register-blocked like conv2d.cl, and the transpose they need.
 *
 * matmul:     C[m, N] = act(A[m, K] . B[K, N] + bias)        (Dense forward, Dense dx)
 * matmul_tn:  C[M, N] = A[k, M]^T . B[k, N], k cut in parts  (Dense d kernel)
 * transpose:  dst[b, j, i] = src[b, i, j] for matrices of TR x TC (Dense and conv2d dx)
 *
 * Sizes (-D): the weight's M/K and N; the batch-dependent size (m rows of matmul, k reduction of
 * matmul_tn) is an argument, so one program serves every batch size. Tiling (-D): MR rows per
 * work-item, VW, NV (NR = VW * NV columns, N % NR == 0); epilogue (-D): HAS_BIAS, ACT.
 * Launch: dim 0 column blocks, dim 1 row blocks, dim 2 (matmul_tn) parts of the reduction.
 * GPUs (-D LOCAL_TILE=1 TX TY KT): matmul stages its operands in local memory (tile.h).
 */
#include "common.h"

#define NR (VW * NV)

#if LOCAL_TILE
#include "tile.h"
#endif

#ifdef MATMUL
__kernel void matmul(__global const float *restrict a, __global const float *restrict b,
                     __global const float *restrict bias, __global float *restrict c, int M)
{
#if LOCAL_TILE
    const int m_tile = get_group_id(1) * BM, n_tile = get_group_id(0) * BN;
    const int m0 = m_tile + get_local_id(1) * MR, n0 = n_tile + get_local_id(0) * NR;
#else
    const int n0 = get_global_id(0) * NR;
    const int m0 = get_global_id(1) * MR;
#endif
    floatV acc[MR][NV];
#pragma unroll
    for (int r = 0; r < MR; r++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            acc[r][v] = (floatV)(0.0f);
#if LOCAL_TILE
#define KDIM K
#define A_ELEM(m, k) ((m) < M && (k) < K ? a[(m) * K + (k)] : 0.0f)
#define B_ELEM(k, n) ((k) < K && (n) < N ? b[(k) * N + (n)] : 0.0f)
    TILED_GEMM(acc)
#else
    __global const float *arow[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        arow[r] = a + min(m0 + r, M - 1) * K; /* rows past the end repeat the last; not stored */
    for (int k = 0; k < K; k++) {
        floatV bv[NV];
#pragma unroll
        for (int v = 0; v < NV; v++)
            bv[v] = LOADV(b + k * N + n0 + v * VW);
#pragma unroll
        for (int r = 0; r < MR; r++) {
            const float av = arow[r][k];
#pragma unroll
            for (int v = 0; v < NV; v++)
                acc[r][v] += av * bv[v];
        }
    }
#endif

#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (m0 + r < M && n0 < N) {
#pragma unroll
            for (int v = 0; v < NV; v++) {
                floatV out = acc[r][v];
#if HAS_BIAS
                out += LOADV(bias + n0 + v * VW);
#endif
                STOREV(ACTIVATE(out), c + (m0 + r) * N + n0 + v * VW);
            }
        }
    }
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
    const int k_begin = (int)(((long)K * part) / parts);
    const int k_end = (int)(((long)K * (part + 1)) / parts);
    int col[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        col[r] = min(m0 + r, M - 1);
    floatV acc[MR][NV];
#pragma unroll
    for (int r = 0; r < MR; r++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            acc[r][v] = (floatV)(0.0f);

    for (int k = k_begin; k < k_end; k++) {
        floatV bv[NV];
#pragma unroll
        for (int v = 0; v < NV; v++)
            bv[v] = LOADV(b + k * N + n0 + v * VW);
#pragma unroll
        for (int r = 0; r < MR; r++) {
            const float av = a[k * M + col[r]];
#pragma unroll
            for (int v = 0; v < NV; v++)
                acc[r][v] += av * bv[v];
        }
    }

    __global float *dst = c + part * (M * N);
#pragma unroll
    for (int r = 0; r < MR; r++)
        if (m0 + r < M)
#pragma unroll
            for (int v = 0; v < NV; v++)
                STOREV(acc[r][v], dst + (m0 + r) * N + n0 + v * VW);
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
