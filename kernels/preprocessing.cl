/* The preprocessing layers (cnnc/ir/preprocessing.py): Keras' Rescaling and Normalization, and
 * normalization's input gradient. Memory-bound; element counts and the float constants come as
 * arguments, so one program serves every shape and every scale.
 * Launch: rescaling, one dimension of ceil(n / ELEMS) work-items (common.h: FOR_ELEMENTS); the
 * per-channel kernels, one work-item per row of the last axis (rounded up; they check it), so
 * the channel index steps along the row with no division per element.
 */
#include "common.h"

#ifdef RESCALING
__kernel void rescaling(__global const float *restrict x, __global float *restrict y, int n,
                        float scale, float offset)
{
    FOR_ELEMENTS(i, n)
        y[i] = x[i] * scale + offset;
}
#endif

/* Keras' divisor: max(sqrt(variance), 1e-7). */
#define NORM_STD(v) fmax(sqrt(v), 1e-7f)

#ifdef NORMALIZATION
__kernel void normalization(__global const float *restrict x, __global const float *restrict mean,
                            __global const float *restrict variance, __global float *restrict y,
                            int rows, int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *src = x + r * cols;
    __global float *dst = y + r * cols;
    for (int c = 0; c < cols; c++)
        dst[c] = (src[c] - mean[c]) / NORM_STD(variance[c]);
}
#endif

#ifdef NORMALIZATION_GRAD
__kernel void normalization_grad(__global const float *restrict dy,
                                 __global const float *restrict variance,
                                 __global float *restrict dx, int rows, int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *src = dy + r * cols;
    __global float *dst = dx + r * cols;
    for (int c = 0; c < cols; c++)
        dst[c] = src[c] / NORM_STD(variance[c]);
}
#endif
