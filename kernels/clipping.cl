/* Gradient clipping by global norm (cnnc/ir/clipping.py): the squared norm of each gradient,
 * added to the running sum of the ones before it, PyTorch's coefficient, and the gradient scaled
 * by it. Everything stays on the device, so a training step with clipping is still one queue.
 * Launch: square_sum_partial over `chunks` work-items (part k sums its contiguous part of x);
 * square_sum_finish and clip_coefficient one work-item; scale_gradient ceil(n / ELEMS)
 * work-items (common.h: FOR_ELEMENTS). -D RUNNING: square_sum_finish adds running[0].
 */
#include "common.h"

#ifdef SQUARE_SUM_PARTIAL
__kernel void square_sum_partial(__global const float *restrict x, __global float *restrict partial,
                                 int n, int chunks)
{
    const int k = get_global_id(0);
    if (k >= chunks)
        return;
    const int end = part_begin(n, k + 1, chunks);
    float s = 0.0f;
    for (int i = part_begin(n, k, chunks); i < end; i++)
        s += x[i] * x[i];
    partial[k] = s;
}
#endif

/* out[0] = sum of the parts in order (+ running[0] with -D RUNNING). */
#ifdef SQUARE_SUM_FINISH
__kernel void square_sum_finish(__global const float *restrict partial,
                                __global const float *restrict running,
                                __global float *restrict out, int chunks)
{
    if (get_global_id(0) != 0)
        return;
    float s = 0.0f;
    for (int k = 0; k < chunks; k++)
        s += partial[k];
#if RUNNING
    s += running[0];
#endif
    out[0] = s;
}
#endif

/* PyTorch's clip_grad_norm_: min(1, max_norm / (sqrt(squared_norm) + 1e-6)). */
#ifdef CLIP_COEFFICIENT
__kernel void clip_coefficient(__global const float *restrict squared_norm,
                               __global float *restrict coefficient, float max_norm)
{
    if (get_global_id(0) != 0)
        return;
    coefficient[0] = fmin(max_norm / (sqrt(squared_norm[0]) + 1e-6f), 1.0f);
}
#endif

#ifdef SCALE_GRADIENT
__kernel void scale_gradient(__global const float *restrict g,
                             __global const float *restrict coefficient,
                             __global float *restrict y, int n)
{
    const float c = coefficient[0];
    FOR_ELEMENTS(i, n)
        y[i] = g[i] * c;
}
#endif
