/* Resampling (upsampling2d) and its gradient on NHWC tensors, by integer factors SH x SW.
 *
 * -D SH, SW: the factors; -D BILINEAR=1 for half-pixel bilinear (PyTorch align_corners=False,
 * Keras 3), else nearest. Output row o reads input row i0 = floor(src) and i1 = min(i0 + 1,
 * H - 1) with src = max((o + 0.5) / S - 0.5, 0), weights 1 - frac and frac; nearest reads o / S.
 * The gradient gathers (one work-item per input element, no atomics): input row i is read by
 * outputs in [(i - 1) * S, (i + 2) * S) only.
 * Launch: one dimension, at least ceil(n / ELEMS) work-items (common.h: FOR_ELEMENTS).
 */
#include "common.h"

#ifndef BILINEAR
#define BILINEAR 0
#endif

/* Input positions and weights that output position o reads along an axis of n, factor s. */
static inline void taps(int o, int n, int s, int *i0, int *i1, float *w0, float *w1)
{
#if BILINEAR
    const float src = fmax(((float)o + 0.5f) / (float)s - 0.5f, 0.0f);
    const int lo = (int)floor(src);
    const float frac = src - (float)lo;
    *i0 = lo;
    *i1 = min(lo + 1, n - 1);
    *w0 = 1.0f - frac;
    *w1 = frac;
#else
    *i0 = o / s;
    *i1 = o / s;
    *w0 = 1.0f;
    *w1 = 0.0f;
#endif
}

#ifdef UPSAMPLING2D
__kernel void upsampling2d(__global const float *restrict x, __global float *restrict y, int n,
                           int h, int w, int c)
{
    const int oh = h * SH, ow = w * SW;
    FOR_ELEMENTS(t, n) {
        const int ch = t % c, ox = (t / c) % ow, oy = (t / (c * ow)) % oh;
        const int b = t / (c * ow * oh);
        int y0, y1, x0, x1;
        float wy0, wy1, wx0, wx1;
        taps(oy, h, SH, &y0, &y1, &wy0, &wy1);
        taps(ox, w, SW, &x0, &x1, &wx0, &wx1);
        __global const float *img = x + b * h * w * c + ch;
        const float top = wx0 * img[(y0 * w + x0) * c] + wx1 * img[(y0 * w + x1) * c];
        const float bottom = wx0 * img[(y1 * w + x0) * c] + wx1 * img[(y1 * w + x1) * c];
        y[t] = wy0 * top + wy1 * bottom;
    }
}
#endif

/* The weight with which output position o reads input position i along one axis. */
static inline float weight_of(int o, int i, int n, int s)
{
    int i0, i1;
    float w0, w1;
    taps(o, n, s, &i0, &i1, &w0, &w1);
    return (i0 == i ? w0 : 0.0f) + (i1 == i ? w1 : 0.0f);
}

#ifdef UPSAMPLING2D_GRAD
/* Outputs that may read input position i along an axis: WIN of them from FIRST(i). */
#if BILINEAR
#define WIN_H (3 * SH)
#define WIN_W (3 * SW)
#define FIRST(i, s) (((i) - 1) * (s))
#else
#define WIN_H SH
#define WIN_W SW
#define FIRST(i, s) ((i) * (s))
#endif

__kernel void upsampling2d_grad(__global const float *restrict dy, __global float *restrict dx,
                                int n, int h, int w, int c)
{
    const int oh = h * SH, ow = w * SW;
    FOR_ELEMENTS(t, n) {
        const int ch = t % c, ix = (t / c) % w, iy = (t / (c * w)) % h;
        const int b = t / (c * w * h);
        /* The column weights once per element, not once per output row. */
        float wx[WIN_W];
        for (int j = 0; j < WIN_W; j++) {
            const int ox = FIRST(ix, SW) + j;
            wx[j] = ox >= 0 && ox < ow ? weight_of(ox, ix, w, SW) : 0.0f;
        }
        __global const float *img = dy + b * oh * ow * c + ch;
        float acc = 0.0f;
        for (int a = 0; a < WIN_H; a++) {
            const int oy = FIRST(iy, SH) + a;
            if (oy < 0 || oy >= oh)
                continue;
            const float wy = weight_of(oy, iy, h, SH);
            if (wy == 0.0f)
                continue;
            __global const float *row = img + (oy * ow + FIRST(ix, SW)) * c;
            float sum = 0.0f;
            for (int j = 0; j < WIN_W; j++)
                if (wx[j] != 0.0f)
                    sum += wx[j] * row[j * c];
            acc += wy * sum;
        }
        dx[t] = acc;
    }
}
#endif
