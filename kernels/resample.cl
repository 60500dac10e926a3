/* Resampling (upsampling2d) and its gradient on NHWC tensors, by integer factors SH x SW.
 *
 * -D SH, SW: the factors; -D BILINEAR=1 for half-pixel bilinear (PyTorch align_corners=False,
 * Keras 3), else nearest. Output row o reads input row i0 = floor(src) and i1 = min(i0 + 1,
 * H - 1) with src = max((o + 0.5) / S - 0.5, 0), weights 1 - frac and frac; nearest reads o / S.
 * The gradient gathers (one work-item per input element, no atomics): input row i is read by
 * outputs in [(i - 1) * S, (i + 2) * S) only.
 * Launch (tiling.py's run_grid over rows of pixels): work-item t takes rows [b * rows_per,
 * (b + 1) * rows_per) and of each the pixels [k * chunk, (k + 1) * chunk), b = t / chunks,
 * k = t % chunks: one division per row, the taps of a row once per row and of a column once
 * per pixel, then vector loops along the channels (-D VW divides c). A division per element
 * cost more than the floats on a CPU driver (pocl, Zen 4: 2 GB/s).
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
/* Rows: the b * oh output rows; pixels: the ow of a row. */
__kernel void upsampling2d(__global const float *restrict x, __global float *restrict y,
                           int rows, int rows_per, int chunk, int chunks, int h, int w, int c)
{
    const int oh = h * SH, ow = w * SW;
    const int t = get_global_id(0), blk = t / chunks;
    const int p0 = (t - blk * chunks) * chunk, p1 = min(p0 + chunk, ow);
    const int r1 = min((blk + 1) * rows_per, rows);
    for (int r = blk * rows_per; r < r1; r++) {
        const int img = r / oh, oy = r - img * oh;
        int y0, y1, x0, x1;
        float wy0, wy1, wx0, wx1;
        taps(oy, h, SH, &y0, &y1, &wy0, &wy1);
        __global const float *top = x + ((long)img * h + y0) * w * c;
        __global float *d = y + (long)r * ow * c;
#if BILINEAR
        __global const float *bottom = x + ((long)img * h + y1) * w * c;
#endif
        for (int ox = p0; ox < p1; ox++) {
            taps(ox, w, SW, &x0, &x1, &wx0, &wx1);
            __global float *out = d + ox * c;
#if BILINEAR
            const float a = wy0 * wx0, bb = wy0 * wx1, cc = wy1 * wx0, dd = wy1 * wx1;
            for (int ch = 0; ch < c; ch += VW)
                STOREV(a * LOADV(top + x0 * c + ch) + bb * LOADV(top + x1 * c + ch)
                       + cc * LOADV(bottom + x0 * c + ch) + dd * LOADV(bottom + x1 * c + ch),
                       out + ch);
#else
            for (int ch = 0; ch < c; ch += VW)
                STOREV(LOADV(top + x0 * c + ch), out + ch);
#endif
        }
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

/* Rows: the b * h input rows; pixels: the w of a row. Each dx element is written once. */
__kernel void upsampling2d_grad(__global const float *restrict dy, __global float *restrict dx,
                                int rows, int rows_per, int chunk, int chunks, int h, int w,
                                int c)
{
    const int oh = h * SH, ow = w * SW;
    const int t = get_global_id(0), blk = t / chunks;
    const int p0 = (t - blk * chunks) * chunk, p1 = min(p0 + chunk, w);
    const int r1 = min((blk + 1) * rows_per, rows);
    for (int r = blk * rows_per; r < r1; r++) {
        const int img = r / h, iy = r - img * h;
#if BILINEAR
        /* The output rows that read input row iy, and their weights: once per row. */
        int oys[WIN_H];
        float wys[WIN_H];
        int taken = 0;
        for (int a = 0; a < WIN_H; a++) {
            const int oy = FIRST(iy, SH) + a;
            const float wy = oy >= 0 && oy < oh ? weight_of(oy, iy, h, SH) : 0.0f;
            if (wy != 0.0f) {
                oys[taken] = oy;
                wys[taken++] = wy;
            }
        }
#endif
        __global const float *img_dy = dy + (long)img * oh * ow * c;
        __global float *d = dx + (long)r * w * c;
        for (int ix = p0; ix < p1; ix++) {
#if BILINEAR
            /* The output columns that read input column ix, and their weights: once per
             * pixel, not once per channel, and no test in the channel loop. */
            int oxs[WIN_W];
            float wxs[WIN_W];
            int across = 0;
            for (int j = 0; j < WIN_W; j++) {
                const int ox = FIRST(ix, SW) + j;
                const float wx = ox >= 0 && ox < ow ? weight_of(ox, ix, w, SW) : 0.0f;
                if (wx != 0.0f) {
                    oxs[across] = ox * c;
                    wxs[across++] = wx;
                }
            }
            for (int ch = 0; ch < c; ch += VW) {
                floatV acc = 0.0f;
                for (int a = 0; a < taken; a++) {
                    __global const float *row = img_dy + (long)oys[a] * ow * c + ch;
                    floatV sum = 0.0f;
                    for (int j = 0; j < across; j++)
                        sum += wxs[j] * LOADV(row + oxs[j]);
                    acc += wys[a] * sum;
                }
                STOREV(acc, d + ix * c + ch);
            }
#else
            /* Nearest: the SH x SW block of outputs at (iy * SH, ix * SW), weights 1. */
            __global const float *block = img_dy + ((long)iy * SH * ow + ix * SW) * c;
            for (int ch = 0; ch < c; ch += VW) {
                floatV acc = 0.0f;
                for (int a = 0; a < SH; a++)
                    for (int j = 0; j < SW; j++)
                        acc += LOADV(block + (a * ow + j) * c + ch);
                STOREV(acc, d + ix * c + ch);
            }
#endif
        }
    }
}
#endif
