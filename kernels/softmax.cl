/* Softmax over the last axis and its gradient (the losses are in losses.cl).
 *
 * Tensors are seen as [rows, cols] with cols the last axis. One work-item per row (rows are
 * short: class scores).
 */
#include "rows.h"

#ifdef SOFTMAX
__kernel void softmax(__global const float *restrict x, __global float *restrict y, int rows,
                      int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *xr = x + r * cols;
    __global float *yr = y + r * cols;
    const float m = row_max(xr, cols);
    float s = 0.0f;
    for (int j = 0; j < cols; j++) {
        const float e = exp(xr[j] - m);
        yr[j] = e;
        s += e;
    }
    const float inv = 1.0f / s;
    for (int j = 0; j < cols; j++)
        yr[j] *= inv;
}
#endif

/* dx = y * (dy - sum(dy * y)) over each row. */
#ifdef SOFTMAX_GRAD
__kernel void softmax_grad(__global const float *restrict y, __global const float *restrict dy,
                           __global float *restrict dx, int rows, int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    const int o = r * cols;
    float dot = 0.0f;
    for (int j = 0; j < cols; j++)
        dot += dy[o + j] * y[o + j];
    for (int j = 0; j < cols; j++)
        dx[o + j] = y[o + j] * (dy[o + j] - dot);
}
#endif

/* The target's weight of class j in row r: one-hot for sparse targets. */
