/* The preprocessing layers (cnnc/ir/preprocessing.py): Keras' Rescaling and Normalization, and
 * normalization's input gradient. Memory-bound; element counts and the float constants come as
 * arguments, so one program serves every shape and every scale.
 * Launch: one dimension of ceil(n / ELEMS) work-items (common.h: FOR_ELEMENTS), each walking
 * ELEMS consecutive elements.
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

/* The channel of element i of a map whose last axis has `cols` values, stepped along a
 * work-item's ELEMS elements: one division per work-item, not one per element (a map with one
 * channel, an input image, would otherwise be one work-item per value). */
#define FOR_CHANNEL_ELEMENTS(i, c, n, cols)                                                     \
    for (int i = get_global_id(0) * ELEMS, i##_end = min(i + ELEMS, (n)), c = i % (cols);        \
         i < i##_end; i++, c = (c + 1 == (cols)) ? 0 : c + 1)

#ifdef NORMALIZATION
__kernel void normalization(__global const float *restrict x, __global const float *restrict mean,
                            __global const float *restrict variance, __global float *restrict y,
                            int n, int cols)
{
    FOR_CHANNEL_ELEMENTS(i, c, n, cols)
        y[i] = (x[i] - mean[c]) / NORM_STD(variance[c]);
}
#endif

#ifdef NORMALIZATION_GRAD
__kernel void normalization_grad(__global const float *restrict dy,
                                 __global const float *restrict variance,
                                 __global float *restrict dx, int n, int cols)
{
    FOR_CHANNEL_ELEMENTS(i, c, n, cols)
        dx[i] = dy[i] / NORM_STD(variance[c]);
}
#endif
