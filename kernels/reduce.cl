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
    floatV s = (floatV)(0.0f);
#if MODE == 3
    floatV s_b = (floatV)(0.0f);
#endif
    for (int r = begin; r < end; r++) {
        const floatV v = LOADV(a + r * cols + col);
#if MODE == 0
        s += v;
#elif MODE == 2
        s += LOADV(b + r * cols + col) * ((v - mean) * rstd);
#elif MODE == 3
        const floatV d = LOADV(b + r * cols + col);
        s_b += d;
        s += d * ((v - mean) * rstd);
#endif
    }
#if MODE == 3
    STOREV(s_b, partial + 2 * k * cols + col);
    STOREV(s, partial + (2 * k + 1) * cols + col);
#else
    STOREV(s, partial + k * cols + col);
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
    const int begin = part_begin(rows, k, chunks), end = part_begin(rows, k + 1, chunks);
    floatV s = (floatV)(0.0f);
    for (int r = begin; r < end; r++)
        s += LOADV(a + r * cols + col);
    const floatV mean = s / (float)max(end - begin, 1);
    floatV q = (floatV)(0.0f);
    for (int r = begin; r < end; r++) {
        const floatV d = LOADV(a + r * cols + col) - mean;
        q += d * d;
    }
    STOREV(s, partial + 2 * k * cols + col);
    STOREV(q, partial + (2 * k + 1) * cols + col);
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
