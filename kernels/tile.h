/* The tiles of a GEMM, shared by conv2d.cl and gemm.cl: each work-item's register block, and on
 * GPUs the work-group's local-memory tile.
 *
 * Register block (-D MR VW NV): a work-item computes MR rows by NR = VW * NV columns of the
 * output, held in `floatV acc[MR][NV]` (NV vectors of width VW per row). Its block starts at row
 * m0 = BLOCK_ROW() and column n0 = BLOCK_COL(): launch dim 0 over row blocks (the large count:
 * some drivers cap dims 1 and 2 at 65,535 groups), dim 1 over column blocks. Each step of the
 * reduction adds a column of A times a row of B (rank1_update): with -cl-mad-enable, NV vector
 * loads, MR broadcasts and MR * NV FMAs.
 *
 * Local tile (-D LOCAL_TILE=1 TX TY KT, GPUs): a work-group of TX * TY work-items, all in launch
 * dim 0, computes a tile of BM = TY*MR rows by BN = TX*NR columns, still one register block per
 * work-item; group g0 of dim 0 is the tile's row, group g1 of dim 1 its column, and consecutive
 * work-items take consecutive column blocks (so their loads of B are contiguous). The reduction
 * runs in steps of KT: the group copies a KT x BM slice of A and a KT x BN slice of B into local
 * memory, waits, and every work-item accumulates its block from there, so each global value is
 * read once per tile instead of once per work-item. On a CPU the copies and barriers only cost:
 * bind.py enables this for GPUs alone (and tests it on every device); tiling.py picks TX, TY, KT
 * within the device's work-group size and local memory. The including kernel defines, before
 * TILED_GEMM(acc):
 *   KDIM           the reduction length
 *   A_ELEM(m, k)   element (m, k) of A, 0.0f outside the matrix or in padding
 *   B_ELEM(k, n)   element (k, n) of B, 0.0f outside
 */
#ifndef CNNC_TILE_H
#define CNNC_TILE_H

#include "common.h"

/* Kernels that share a file with the GEMMs but are none (im2col, transpose) build without -D MR
 * and see nothing of this header. */
#ifdef MR
#define NR (VW * NV)

#if LOCAL_TILE
#define BM (TY * MR)
#define BN (TX * NR)
#define BLOCK_ROW() ((int)get_group_id(0) * BM + ((int)get_local_id(0) / TX) * MR)
#define BLOCK_COL() ((int)get_group_id(1) * BN + ((int)get_local_id(0) % TX) * NR)
#else
#define BLOCK_ROW() ((int)get_global_id(0) * MR)
#define BLOCK_COL() ((int)get_global_id(1) * NR)
#endif

static void zero_block(floatV acc[MR][NV])
{
#pragma unroll
    for (int r = 0; r < MR; r++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            acc[r][v] = (floatV)(0.0f);
}

/* b = the NR floats from p on. */
static void load_row(floatV b[NV], __global const float *p)
{
#pragma unroll
    for (int v = 0; v < NV; v++)
        b[v] = LOADV(p + v * VW);
}

/* One step of the reduction: acc[r] += a[r] * b for every row r of the block. */
static void rank1_update(floatV acc[MR][NV], const float a[MR], const floatV b[NV])
{
#pragma unroll
    for (int r = 0; r < MR; r++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            acc[r][v] += a[r] * b[v];
}

/* acc += A . B over `len` steps, where row r of A starts at a_rows[r] (contiguous along the
 * reduction) and row k of B at b + k * ldb: matmul's whole loop, one convolution tap's. */
static void gemm_steps(floatV acc[MR][NV], __global const float *a_rows[MR],
                       __global const float *b, int len, int ldb)
{
    for (int k = 0; k < len; k++) {
        floatV bk[NV];
        float ak[MR];
        load_row(bk, b + k * ldb);
#pragma unroll
        for (int r = 0; r < MR; r++)
            ak[r] = a_rows[r][k];
        rank1_update(acc, ak, bk);
    }
}

/* acc += rows m0.. of A (rows x depth, row-major) . columns n0.. of B (depth x cols): a plain
 * matrix product's block (matmul, Winograd's per-point GEMMs). Rows past the end repeat the
 * last; store_block never stores them. (Lower-case names: kernels define M, K, N with -D.) */
static void gemm_block(floatV acc[MR][NV], __global const float *a, __global const float *b,
                       int m0, int n0, int rows, int depth, int cols)
{
    __global const float *a_rows[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        a_rows[r] = a + min(m0 + r, rows - 1) * depth;
    gemm_steps(acc, a_rows, b + n0, depth, cols);
}

/* Writes the block to rows m0.. and columns n0.. of `out`, a rows x cols matrix, skipping rows
 * past the end (and the whole block when it starts past the last column: only local tiles
 * round the grid up that far), through common.h's `epilogue`: + bias[n] with -D HAS_BIAS=1,
 * + the same element of `residual` (a rows x cols matrix too) with -D HAS_RESIDUAL=1, then
 * ACTIVATE. Kernels without a bias or a residual pass 0. */
static void store_output(floatV acc[MR][NV], __global const float *bias,
                         __global const float *residual, __global float *out, int m0, int n0,
                         int rows, int cols)
{
    if (n0 >= cols)
        return;
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (m0 + r >= rows)
            return;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            const int at = (m0 + r) * cols + n0 + v * VW;
            STOREV(epilogue(acc[r][v], bias, residual, n0 + v * VW, at), out + at);
        }
    }
}

/* store_output with no residual: the kernels that never store a residual node's value. */
static void store_block(floatV acc[MR][NV], __global const float *bias, __global float *out,
                        int m0, int n0, int rows, int cols)
{
    store_output(acc, bias, 0, out, m0, n0, rows, cols);
}

/* store_block for rows that are not consecutive in memory: row r of the block goes to columns
 * n0.. of the row starting at out_rows[r], for the first `count` rows (conv2d.cl's phases of a
 * strided input gradient). The same epilogue as store_block (no residual). */
static void store_rows(floatV acc[MR][NV], __global const float *bias,
                       __global float *out_rows[MR], int count, int n0, int cols)
{
    if (n0 >= cols)
        return;
#pragma unroll
    for (int r = 0; r < MR; r++) {
        /* a guard, not an early return: an exit from the loop kept Oclgrind's clang from
         * unrolling it */
        if (r < count) {
#pragma unroll
            for (int v = 0; v < NV; v++)
                STOREV(epilogue(acc[r][v], bias, 0, n0 + v * VW, 0), out_rows[r] + n0 + v * VW);
        }
    }
}

#if LOCAL_TILE
#define TILED_GEMM(acc)                                                                       \
    __local float a_tile[KT][BM];                                                             \
    __local float b_tile[KT][BN];                                                             \
    {                                                                                         \
        const int m_tile = get_group_id(0) * BM, n_tile = get_group_id(1) * BN;              \
        const int lid = get_local_id(0);                                                      \
        const int lx = lid % TX, ly = lid / TX;                                               \
        for (int k0 = 0; k0 < KDIM; k0 += KT) {                                               \
            /* consecutive work-items read consecutive k: A is contiguous along k */          \
            for (int i = lid; i < KT * BM; i += TX * TY)                                      \
                a_tile[i % KT][i / KT] = A_ELEM(m_tile + i / KT, k0 + i % KT);                \
            for (int i = lid; i < KT * BN; i += TX * TY)                                      \
                b_tile[i / BN][i % BN] = B_ELEM(k0 + i / BN, n_tile + i % BN);                \
            barrier(CLK_LOCAL_MEM_FENCE);                                                     \
            for (int kk = 0; kk < KT; kk++) {                                                 \
                floatV bk[NV];                                                                \
                float ak[MR];                                                                 \
                for (int v = 0; v < NV; v++)                                                  \
                    bk[v] = LOADV(&b_tile[kk][lx * NR + v * VW]);                             \
                for (int r = 0; r < MR; r++)                                                  \
                    ak[r] = a_tile[kk][ly * MR + r];                                          \
                rank1_update(acc, ak, bk);                                                    \
            }                                                                                 \
            barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        }                                                                                     \
    }
#endif /* LOCAL_TILE */
#endif /* MR */

#endif
