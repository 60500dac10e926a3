/* Global max pooling over NHWC maps (cnnc/ir/global_maxpool.py) and its gradient.
 *
 * One work-item per (image, channel), rounded up (kernels check bounds); `hw` positions of `c`
 * channels per image. Ties go to the first maximum in
 * row-major (h, w) order, as pool.cl's max pooling gradient does.
 */
#include "common.h"

/* The position (0..hw-1) of the first maximum of channel ch of image img. */
static int first_max(__global const float *x, int img, int ch, int hw, int c)
{
    const int base = img * hw * c + ch;
    float best = x[base];
    int where = 0;
    for (int p = 1; p < hw; p++) {
        const float v = x[base + p * c];
        if (v > best) { /* strictly greater: a later equal value does not displace the first */
            best = v;
            where = p;
        }
    }
    return where;
}

#ifdef GLOBAL_MAXPOOL2D
__kernel void global_maxpool2d(__global const float *restrict x, __global float *restrict y,
                               int batch, int hw, int c)
{
    const int i = get_global_id(0);
    if (i >= batch * c)
        return;
    const int img = i / c, ch = i % c;
    y[i] = x[(img * hw + first_max(x, img, ch, hw, c)) * c + ch];
}
#endif

/* dx[img, p, ch] = dy[img, ch] at the first maximum p, 0 at every other position: each
 * work-item writes its own channel's cells, so nothing races and dx needs no zero fill. */
#ifdef GLOBAL_MAXPOOL2D_GRAD
__kernel void global_maxpool2d_grad(__global const float *restrict x,
                                    __global const float *restrict dy, __global float *restrict dx,
                                    int batch, int hw, int c)
{
    const int i = get_global_id(0);
    if (i >= batch * c)
        return;
    const int img = i / c, ch = i % c;
    const int where = first_max(x, img, ch, hw, c);
    const float g = dy[i];
    for (int p = 0; p < hw; p++)
        dx[(img * hw + p) * c + ch] = p == where ? g : 0.0f;
}
#endif
