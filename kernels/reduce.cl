/* Reductions: column sums of [rows, cols] tensors in two deterministic stages, and a full sum.
 *
 * col_sum_partial sums chunk k of the rows for every column into partial[k, col]; col_sum_finish
 * adds the chunks in order (and also adds up the parts of a split kernel gradient). What is
 * summed is chosen by -D MODE:
 *   0  a                                  (bias gradients)
 *   2  b * (a - mean) / sqrt(var + eps)   (sum of dy * xhat for batch norm; a = x, b = dy;
 *                                          mean = stats row 0, var = stats row 1)
 *   3  modes 0 of b and 2 at once          (batch norm's two gradient sums in one pass: b into
 *                                           partial[k, col] and b * xhat into
 *                                           partial[k, cols + col] of a [chunks, 2 * cols]
 *                                           workspace that col_sum_finish reads as 2 * cols
 *                                           columns; each sum in the order of modes 0 and 2)
 * Each work-item sums VW neighbouring columns as one vector (-D VW divides cols).
 * Launch: col_sum_partial over (cols / VW, chunks); col_sum_finish over cols / VW; sum_all one
 * work-item. Batch norm's statistics have a one-pass pair of their own (batch_stats_partial).
 */
#include "common.h"

#ifndef MODE
#define MODE 0
#endif

#ifdef COL_SUM_PARTIAL
__kernel void col_sum_partial(__global const float *restrict a, __global const float *restrict b,
                              __global const float *restrict stats, float eps,
                              __global float *restrict partial, int rows, int cols, int chunks)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const int begin = part_begin(rows, k, chunks);
    const int end = part_begin(rows, k + 1, chunks);
#if MODE >= 2
    const floatV mean = LOADV(stats + col);
    const floatV rstd = 1.0f / sqrt(LOADV(stats + cols + col) + eps);
#endif
    /* Even and odd rows into sums of their own (s0, s1; mode 3's b in b0, b1), added at the
     * end: one chain of dependent adds per sum bounded the loop by the add's latency, not by
     * memory. */
#if MODE == 0
#define ROW_TERMS(r, s, sb) s += LOADV(a + (r) * cols + col)
#elif MODE == 2
#define ROW_TERMS(r, s, sb)                                                                    \
    s += LOADV(b + (r) * cols + col) * ((LOADV(a + (r) * cols + col) - mean) * rstd)
#elif MODE == 3
#define ROW_TERMS(r, s, sb)                                                                    \
    do {                                                                                       \
        const floatV d_ = LOADV(b + (r) * cols + col);                                         \
        sb += d_;                                                                              \
        s += d_ * ((LOADV(a + (r) * cols + col) - mean) * rstd);                               \
    } while (0)
#endif
    floatV s0 = (floatV)(0.0f), s1 = s0, b0 = s0, b1 = s0;
    int r = begin;
    for (; r + 1 < end; r += 2) {
        ROW_TERMS(r, s0, b0);
        ROW_TERMS(r + 1, s1, b1);
    }
    if (r < end)
        ROW_TERMS(r, s0, b0);
#if MODE == 3
    STOREV(b0 + b1, partial + 2 * k * cols + col);
    STOREV(s0 + s1, partial + (2 * k + 1) * cols + col);
#else
    STOREV(s0 + s1, partial + k * cols + col);
#endif
}
#endif

/* out[out_offset + col] = scale * sum over k of partial[k, col]. */
#ifdef COL_SUM_FINISH
__kernel void col_sum_finish(__global const float *restrict partial, __global float *restrict out,
                             int cols, int chunks, float scale, int out_offset)
{
    const int col = get_global_id(0) * VW;
    if (col >= cols)
        return;
    floatV s = (floatV)(0.0f);
    for (int k = 0; k < chunks; k++)
        s += LOADV(partial + k * cols + col);
    STOREV(s * scale, out + out_offset + col);
}
#endif

/* Batch norm's statistics in one pass over a: chunk k's sum and its sum of squared deviations
 * about the chunk's own mean (the chunk re-read for that from the work-item's cache, not from
 * memory) into partial[2k, col] and partial[2k + 1, col]; batch_stats_finish combines the
 * chunks exactly, M2 = sum over k of (M2_k + n_k (mean_k - mean)^2) (Chan et al.), into
 * stats = [mean; biased variance]. Launch: as col_sum_partial, then over cols / VW. */
#ifdef BATCH_STATS_PARTIAL
__kernel void batch_stats_partial(__global const float *restrict a,
                                  __global float *restrict partial, int rows, int cols,
                                  int chunks)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    /* Rows r mod 4 into four sums each, added at the end: one chain of dependent adds was
     * bound by the add's latency, not by memory (2x slower on a Zen 3 core, 14x14x48 at batch
     * 128). */
    const int begin = part_begin(rows, k, chunks), end = part_begin(rows, k + 1, chunks);
    const int end4 = begin + (end - begin) / 4 * 4;
    floatV s0 = (floatV)(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (int r = begin; r < end4; r += 4) {
        s0 += LOADV(a + r * cols + col);
        s1 += LOADV(a + (r + 1) * cols + col);
        s2 += LOADV(a + (r + 2) * cols + col);
        s3 += LOADV(a + (r + 3) * cols + col);
    }
    for (int r = end4; r < end; r++)
        s0 += LOADV(a + r * cols + col);
    const floatV s = (s0 + s1) + (s2 + s3);
    const floatV mean = s / (float)max(end - begin, 1);
    floatV q0 = (floatV)(0.0f), q1 = q0, q2 = q0, q3 = q0;
    for (int r = begin; r < end4; r += 4) {
        const floatV d0 = LOADV(a + r * cols + col) - mean;
        const floatV d1 = LOADV(a + (r + 1) * cols + col) - mean;
        const floatV d2 = LOADV(a + (r + 2) * cols + col) - mean;
        const floatV d3 = LOADV(a + (r + 3) * cols + col) - mean;
        q0 += d0 * d0;
        q1 += d1 * d1;
        q2 += d2 * d2;
        q3 += d3 * d3;
    }
    for (int r = end4; r < end; r++) {
        const floatV d = LOADV(a + r * cols + col) - mean;
        q0 += d * d;
    }
    STOREV(s, partial + 2 * k * cols + col);
    STOREV((q0 + q1) + (q2 + q3), partial + (2 * k + 1) * cols + col);
}
#endif

#ifdef BATCH_STATS_FINISH
__kernel void batch_stats_finish(__global const float *restrict partial,
                                 __global float *restrict stats, int rows, int cols, int chunks)
{
    const int col = get_global_id(0) * VW;
    if (col >= cols)
        return;
    floatV s = (floatV)(0.0f);
    for (int k = 0; k < chunks; k++)
        s += LOADV(partial + 2 * k * cols + col);
    const floatV mean = s / (float)rows;
    floatV m2 = (floatV)(0.0f);
    for (int k = 0; k < chunks; k++) {
        const int n = part_begin(rows, k + 1, chunks) - part_begin(rows, k, chunks);
        if (n == 0)
            continue;
        const floatV d = LOADV(partial + 2 * k * cols + col) / (float)n - mean;
        m2 += LOADV(partial + (2 * k + 1) * cols + col) + (float)n * d * d;
    }
    STOREV(mean, stats + col);
    STOREV(m2 / (float)rows, stats + cols + col);
}
#endif

/* out[0] = scale * sum(x[0..n-1]), in index order. */
#ifdef SUM_ALL
__kernel void sum_all(__global const float *restrict x, __global float *restrict out, int n,
                      float scale)
{
    if (get_global_id(0) != 0)
        return;
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += x[i];
    out[0] = s * scale;
}
#endif
