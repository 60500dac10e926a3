/* Dense forward for a few rows (batch 1 to 8): c[m, N] = act(a[m, K] . b[K, N] + bias).
 *
 * matmul (gemm.cl) gives each work-item an MR x NR block and the whole reduction: with one to
 * eight rows that is N / NR work-items, a handful for a classifier's head, each streaming K rows
 * of b alone. Here a work-group of G work-items shares one MR x NR block: work-item g sums its
 * contiguous part of the K rows (part_begin, common.h), the G partial blocks are added up in
 * local memory by halving, and work-item 0 applies the epilogue and stores. Every row of b is
 * still read once per row block, now by G work-items at once.
 *
 * Sizes (-D): K, N; MR rows per work-group (rows past M are not stored), VW, NV (NR = VW * NV
 * columns, N % NR == 0), G work-items per group (a power of two). Epilogue (-D): HAS_BIAS,
 * ACT_<NAME> (common.h). The rows M are an argument.
 * Launch: dim 0 = column blocks * G in groups of (G, 1), dim 1 = row blocks.
 *
 * dense_softmax (-D DENSE_SOFTMAX instead of G): a classifier's head, the dense layer and the
 * softmax over its N outputs in one launch, for few columns (a softmax launch of its own cost
 * more than the head's arithmetic at batch 1). A work-group holds MR rows and all N columns,
 * work-item j the MR x NR block from column j * NR over the whole reduction; the logits go to
 * local memory, and each work-item normalises its own block by its rows' maximum and sum of
 * exponentials read from there (as softmax.cl computes them). Launch: dim 0 = N / NR, dim 1 =
 * row blocks, in groups of (N / NR, 1).
 *
 * With -D POOL_PIXELS (avgpool_dense, cnnc/ir/avgpool_dense.py): a is a map of POOL_PIXELS
 * pixels of K channels per row, and the dense layer reads each row's mean over its pixels (a
 * global average pooling before the head, without a launch of its own). The work-group first
 * averages its MR rows into local memory, its work-items taking every items-th (row, POOL_VW
 * channels), and the block sums read them from there.
 */
#include "common.h"
#include "tile.h" /* zero_block */

#define NR (VW * NV)

/* acc = a[m0 .. m0 + MR, k_begin .. k_end] . b[k_begin .. k_end, n0 .. n0 + NR]: both kernels'
 * register block over their part of the reduction. */
#ifndef GEMV_SUM /* (which has no block of its own) */
#ifdef POOL_PIXELS
#define A_SPACE __local /* the pooled rows */
#else
#define A_SPACE __global
#endif
static void block_sum(A_SPACE const float *a, __global const float *b, int M, int m0, int n0,
                      int k_begin, int k_end, floatV acc[MR][NV])
{
    zero_block(acc);
    for (int k = k_begin; k < k_end; k++) {
        floatV bv[NV];
#pragma unroll
        for (int v = 0; v < NV; v++)
            bv[v] = LOADV(b + k * N + n0 + v * VW);
#pragma unroll
        for (int r = 0; r < MR; r++) {
            /* Rows past M read row M - 1 (in bounds) and are not stored. */
            const float av = a[min(m0 + r, M - 1) * K + k];
#pragma unroll
            for (int v = 0; v < NV; v++)
                acc[r][v] = fma((floatV)(av), bv[v], acc[r][v]);
        }
    }
}
#endif

#ifdef G
__kernel void gemv(__global const float *restrict a, __global const float *restrict b,
                   __global const float *restrict bias, __global float *restrict c, int M)
{
    __local floatV part[G][MR][NV];
    const int g = (int)get_local_id(0);
    const int n0 = (int)get_group_id(0) * NR, m0 = (int)get_group_id(1) * MR;
    floatV acc[MR][NV];
    block_sum(a, b, M, m0, n0, part_begin(K, g, G), part_begin(K, g + 1, G), acc);

#pragma unroll
    for (int r = 0; r < MR; r++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            part[g][r][v] = acc[r][v];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = G / 2; s > 0; s /= 2) {
        if (g < s) {
#pragma unroll
            for (int r = 0; r < MR; r++)
#pragma unroll
                for (int v = 0; v < NV; v++)
                    part[g][r][v] += part[g + s][r][v];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (g != 0)
        return;
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (m0 + r < M) { /* no break: a loop with one is not unrolled */
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int n = n0 + v * VW, at = (m0 + r) * N + n;
                STOREV(epilogue(part[0][r][v], bias, 0, n, at), c + at);
            }
        }
    }
}
#endif

#ifdef GEMV_PARTS
/* gemv for a chain (cnnc/backends/opencl/chain.py), whose work-groups are single work-items:
 * the reduction is split over the work-items instead of a work-group's (which needs a barrier),
 * and each part's block is stored for gemv_sum, the chain's next launch, to add up. A part is
 * P contiguous rows of b read across NR columns, a stream where gemv's one work-item a block
 * would read its NR columns of every row, a stride of N floats apart.
 * Sizes (-D): K, N, MR, VW, NV as gemv's; P parts. Launch: dim 0 = column blocks, dim 1 =
 * parts, dim 2 = row blocks; part[P][M][N]. */
__kernel void gemv_parts(__global const float *restrict a, __global const float *restrict b,
                         __global float *restrict part, int M)
{
    const int n0 = (int)get_global_id(0) * NR, p = (int)get_global_id(1);
    const int m0 = (int)get_global_id(2) * MR;
    floatV acc[MR][NV];
    block_sum(a, b, M, m0, n0, part_begin(K, p, P), part_begin(K, p + 1, P), acc);
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (m0 + r < M) { /* no break: a loop with one is not unrolled */
#pragma unroll
            for (int v = 0; v < NV; v++)
                STOREV(acc[r][v], part + (p * M + m0 + r) * N + n0 + v * VW);
        }
    }
}
#endif

#ifdef GEMV_SUM
/* c[m, n .. n + VW] = epilogue(sum over the P parts): gemv_parts' second launch. Sizes (-D): N,
 * VW, P. Launch: dim 0 = N / VW, dim 1 = rows M. */
__kernel void gemv_sum(__global const float *restrict part, __global const float *restrict bias,
                       __global float *restrict c, int M)
{
    const int n = (int)get_global_id(0) * VW, m = (int)get_global_id(1);
    floatV s = LOADV(part + m * N + n);
    for (int p = 1; p < P; p++)
        s += LOADV(part + (p * M + m) * N + n);
    STOREV(epilogue(s, bias, 0, n, m * N + n), c + m * N + n);
}
#endif

#ifdef DENSE_SOFTMAX
#ifdef POOL_PIXELS
#if POOL_VW == 1
#define poolV float
#define POOL_LOAD(p) (*(p))
#define POOL_STORE(v, p) (*(p) = (v))
#else
#define poolV CAT(float, POOL_VW)
#define POOL_LOAD(p) CAT(vload, POOL_VW)(0, (p))
#define POOL_STORE(v, p) CAT(vstore, POOL_VW)((v), 0, (p))
#endif
#endif
__kernel void dense_softmax(__global const float *restrict a, __global const float *restrict b,
                            __global const float *restrict bias, __global float *restrict c,
                            int M)
{
    __local float logits[MR][N];
    const int n0 = (int)get_local_id(0) * NR, m0 = (int)get_group_id(1) * MR;
    floatV acc[MR][NV];
#ifdef POOL_PIXELS
    __local float pooled[MR * K];
    const int items = (int)get_local_size(0);
    /* POOL_VW channels at a time (a vector of them: POOL_VW divides K), in two sums of
     * alternate pixels (two chains of additions where one would wait on each). */
    for (int i = (int)get_local_id(0); i < MR * K / POOL_VW; i += items) {
        const int row = i / (K / POOL_VW), ch = i % (K / POOL_VW) * POOL_VW;
        /* Rows past M average row M - 1 (in bounds) and are not stored. */
        __global const float *src = a + (min(m0 + row, M - 1) * POOL_PIXELS) * K + ch;
        poolV s0 = 0.0f, s1 = 0.0f;
        int p = 0;
        for (; p + 1 < POOL_PIXELS; p += 2) {
            s0 += POOL_LOAD(src + p * K);
            s1 += POOL_LOAD(src + (p + 1) * K);
        }
        if (p < POOL_PIXELS)
            s0 += POOL_LOAD(src + p * K);
        POOL_STORE((s0 + s1) / POOL_PIXELS, &pooled[row * K + ch]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    block_sum(pooled, b, MR, 0, n0, 0, K, acc);
#else
    block_sum(a, b, M, m0, n0, 0, K, acc);
#endif
#pragma unroll
    for (int r = 0; r < MR; r++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            STOREV(epilogue(acc[r][v], bias, 0, n0 + v * VW, 0), &logits[r][n0 + v * VW]);
    barrier(CLK_LOCAL_MEM_FENCE);
    /* Each work-item its block's exponentials (once each), then every row's sum of them. */
    float m[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        m[r] = -INFINITY;
        for (int n = 0; n < N; n++)
            m[r] = max(m[r], logits[r][n]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int r = 0; r < MR; r++)
        for (int i = 0; i < NR; i++)
            logits[r][n0 + i] = exp(logits[r][n0 + i] - m[r]);
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (m0 + r < M) { /* no break: a loop with one is not unrolled */
            float s = 0.0f;
            for (int n = 0; n < N; n++)
                s += logits[r][n];
            const float inv = 1.0f / s;
            for (int i = 0; i < NR; i++)
                c[(m0 + r) * N + n0 + i] = logits[r][n0 + i] * inv;
        }
    }
}
#endif
