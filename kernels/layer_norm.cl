/* Layer normalisation over the last axis (cnnc/ir/layer_norm.py), tensors seen as [rows, cols].
 *
 * Every row is normalised by its own statistics, computed in two passes over its cols values
 * (the mean, then the squared deviations from it) so that a large mean does not cancel the
 * variance away. -D HAS_GAMMA (scale=True) and HAS_BETA (center=True), 0 or 1; epsilon comes
 * as a float argument (build options carry integers only). Flat indices fit an int: plan
 * building refuses larger tensors (target.py).
 * Launch: layer_norm, layer_norm_grad_input and layer_norm_stats one work-item per row, rounded
 * up (kernels check bounds); layer_norm_grad_gamma_partial over (cols, chunks), its chunks
 * then added up in order by reduce.cl's col_sum_finish: no atomics, the same sums every run;
 * layer_norm_grad_sums_partial one work-item per chunk of rows, likewise finished.
 */
/* -D VW (a width dividing cols, bind_layer_norm.py): each row is read VW contiguous channels at
 * a time, a vector load, where one float at a time left pocl to gather across rows. */
#ifndef VW
#define VW 1
#endif
#include "common.h"

#include "lanes.h" /* lanes_sum */

/* (mean, 1 / sqrt(biased variance + eps)) of the cols values at x. */
static float2 row_stats(__global const float *x, int cols, float eps)
{
    floatV sum = (floatV)(0.0f);
    for (int j = 0; j < cols; j += VW)
        sum += LOADV(x + j);
    const float mean = lanes_sum(sum) / (float)cols;
    floatV dev = (floatV)(0.0f);
    for (int j = 0; j < cols; j += VW) {
        const floatV d = LOADV(x + j) - mean;
        dev += d * d;
    }
    return (float2)(mean, 1.0f / sqrt(lanes_sum(dev) / (float)cols + eps));
}

#ifdef LAYER_NORM
__kernel void layer_norm(__global const float *restrict x, __global const float *restrict gamma,
                         __global const float *restrict beta, __global float *restrict y,
                         int rows, int cols, float eps)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    const int at = r * cols;
    const float2 s = row_stats(x + at, cols, eps);
    for (int j = 0; j < cols; j += VW) {
        floatV v = (LOADV(x + at + j) - s.x) * s.y;
#if HAS_GAMMA
        v *= LOADV(gamma + j);
#endif
#if HAS_BETA
        v += LOADV(beta + j);
#endif
        STOREV(v, y + at + j);
    }
}
#endif

/* dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps) per row, g = dy * gamma. */
#ifdef LAYER_NORM_GRAD_INPUT
__kernel void layer_norm_grad_input(__global const float *restrict x,
                                    __global const float *restrict dy,
                                    __global const float *restrict gamma,
                                    __global float *restrict dx, int rows, int cols, float eps)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    const int at = r * cols;
    const float2 s = row_stats(x + at, cols, eps);
    floatV sum_g = (floatV)(0.0f), sum_gx = (floatV)(0.0f);
    for (int j = 0; j < cols; j += VW) {
        floatV g = LOADV(dy + at + j);
#if HAS_GAMMA
        g *= LOADV(gamma + j);
#endif
        sum_g += g;
        sum_gx += g * ((LOADV(x + at + j) - s.x) * s.y);
    }
    const float mean_g = lanes_sum(sum_g) / (float)cols;
    const float mean_gx = lanes_sum(sum_gx) / (float)cols;
    for (int j = 0; j < cols; j += VW) {
        floatV g = LOADV(dy + at + j);
#if HAS_GAMMA
        g *= LOADV(gamma + j);
#endif
        const floatV xhat = (LOADV(x + at + j) - s.x) * s.y;
        STOREV((g - mean_g - xhat * mean_gx) * s.y, dx + at + j);
    }
}
#endif

/* stats[2r] = the mean of row r, stats[2r + 1] = 1 / sqrt(its variance + eps). */
#ifdef LAYER_NORM_STATS
__kernel void layer_norm_stats(__global const float *restrict x, __global float *restrict stats,
                               int rows, int cols, float eps)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    vstore2(row_stats(x + r * cols, cols, eps), r, stats);
}
#endif

/* partial[k, col] = sum over chunk k of the rows of dy[r, col] * xhat[r, col], xhat from the
 * row statistics layer_norm_stats wrote. */
#ifdef LAYER_NORM_GRAD_GAMMA_PARTIAL
__kernel void layer_norm_grad_gamma_partial(__global const float *restrict x,
                                            __global const float *restrict dy,
                                            __global const float *restrict stats,
                                            __global float *restrict partial, int rows,
                                            int cols, int chunks)
{
    const int col = get_global_id(0);
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const int end = part_begin(rows, k + 1, chunks);
    float s = 0.0f;
    for (int r = part_begin(rows, k, chunks); r < end; r++) {
        const float2 st = vload2(r, stats);
        s += dy[r * cols + col] * ((x[r * cols + col] - st.x) * st.y);
    }
    partial[k * cols + col] = s;
}
#endif

/* partial[k] = [sum(dy); sum(dy * xhat)] over chunk k of the rows (2 x cols floats: beta's and
 * gamma's gradients, share_ln_sums.py), each row's statistics computed as the row is read, so
 * that x and dy are read once for both sums and no statistics are written. One work-item per
 * chunk: its partial row stays in the core's cache while the chunk's rows go by. */
#ifdef LAYER_NORM_GRAD_SUMS_PARTIAL
__kernel void layer_norm_grad_sums_partial(__global const float *restrict x,
                                           __global const float *restrict dy,
                                           __global float *restrict partial, int rows, int cols,
                                           int chunks, float eps)
{
    const int k = get_global_id(0);
    if (k >= chunks)
        return;
    __global float *sum_g = partial + 2 * k * cols, *sum_gx = sum_g + cols;
    for (int j = 0; j < cols; j += VW) {
        STOREV((floatV)(0.0f), sum_g + j);
        STOREV((floatV)(0.0f), sum_gx + j);
    }
    const int end = part_begin(rows, k + 1, chunks);
    for (int r = part_begin(rows, k, chunks); r < end; r++) {
        const int at = r * cols;
        const float2 s = row_stats(x + at, cols, eps);
        for (int j = 0; j < cols; j += VW) {
            const floatV g = LOADV(dy + at + j);
            STOREV(LOADV(sum_g + j) + g, sum_g + j);
            STOREV(LOADV(sum_gx + j) + g * ((LOADV(x + at + j) - s.x) * s.y), sum_gx + j);
        }
    }
}
#endif
