/* Pooling over NHWC windows and its gradients, one work-item per output element.
 *
 * Window geometry (-D, from cnnc/ir/convpool.py window_geometry): H W C input, OH OW output,
 * KH KW window, SH SW strides, PT PL padding before; the batch size is the argument `batch`. Padding cells never win a max and
 * are not counted in a mean (Keras). Launch: one dimension over the output's elements.
 * Gradients are gathers (each input element sums the windows that cover it): no atomics, and
 * the order of the sums is fixed.
 */
#include "common.h"

#ifdef KH
/* Rows oh of the windows that cover input row ih: max(0, ceil((ih+PT-KH+1)/SH)) .. */
#define FIRST_WINDOW(i, P, K, S) ((i) + (P) - (K) + 1 <= 0 ? 0 : ((i) + (P) - (K) + (S)) / (S))
#define LAST_WINDOW(i, P, S, O) min((O) - 1, ((i) + (P)) / (S))

#ifdef MAXPOOL2D
__kernel void maxpool2d(__global const float *restrict x, __global float *restrict y,
                        int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * OH * OW * C)
        return;
    const int c = i % C, ow = (i / C) % OW, oh = (i / (C * OW)) % OH, n = i / (C * OW * OH);
    float best = -INFINITY;
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W)
                continue;
            best = max(best, x[((n * H + ih) * W + iw) * C + c]);
        }
    }
    y[i] = best;
}
#endif

#ifdef AVGPOOL2D
__kernel void avgpool2d(__global const float *restrict x, __global float *restrict y,
                        int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * OH * OW * C)
        return;
    const int c = i % C, ow = (i / C) % OW, oh = (i / (C * OW)) % OH, n = i / (C * OW * OH);
    float sum = 0.0f;
    int count = 0;
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W)
                continue;
            sum += x[((n * H + ih) * W + iw) * C + c];
            count++;
        }
    }
    y[i] = sum / (float)count;
}
#endif

/* The flat (kh, kw) index of the first maximum of window (oh, ow), row-major, padding skipped. */
static int window_argmax(__global const float *restrict x, int n, int oh, int ow, int c)
{
    float best = -INFINITY;
    int where = -1;
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W)
                continue;
            const float v = x[((n * H + ih) * W + iw) * C + c];
            if (where < 0 || v > best) {
                best = v;
                where = kh * KW + kw;
            }
        }
    }
    return where;
}

/* dx[n, ih, iw, c] = sum of dy over the windows whose first maximum is (ih, iw). */
#ifdef MAXPOOL2D_GRAD
__kernel void maxpool2d_grad(__global const float *restrict x, __global const float *restrict dy,
                             __global float *restrict dx, int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * H * W * C)
        return;
    const int c = i % C, iw = (i / C) % W, ih = (i / (C * W)) % H, n = i / (C * W * H);
    float sum = 0.0f;
    for (int oh = FIRST_WINDOW(ih, PT, KH, SH); oh <= LAST_WINDOW(ih, PT, SH, OH); oh++) {
        for (int ow = FIRST_WINDOW(iw, PL, KW, SW); ow <= LAST_WINDOW(iw, PL, SW, OW); ow++) {
            const int kh = ih - (oh * SH - PT), kw = iw - (ow * SW - PL);
            if (window_argmax(x, n, oh, ow, c) == kh * KW + kw)
                sum += dy[((n * OH + oh) * OW + ow) * C + c];
        }
    }
    dx[i] = sum;
}
#endif

/* The number of real (unpadded) cells in window (oh, ow). */
static int window_count(int oh, int ow)
{
    const int h0 = oh * SH - PT, w0 = ow * SW - PL;
    const int rows = min(h0 + KH, H) - max(h0, 0);
    const int cols = min(w0 + KW, W) - max(w0, 0);
    return rows * cols;
}

/* dx[n, ih, iw, c] = sum over the windows covering (ih, iw) of dy / (real cells of the window). */
#ifdef AVGPOOL2D_GRAD
__kernel void avgpool2d_grad(__global const float *restrict dy, __global float *restrict dx,
                             int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * H * W * C)
        return;
    const int c = i % C, iw = (i / C) % W, ih = (i / (C * W)) % H, n = i / (C * W * H);
    float sum = 0.0f;
    for (int oh = FIRST_WINDOW(ih, PT, KH, SH); oh <= LAST_WINDOW(ih, PT, SH, OH); oh++)
        for (int ow = FIRST_WINDOW(iw, PL, KW, SW); ow <= LAST_WINDOW(iw, PL, SW, OW); ow++)
            sum += dy[((n * OH + oh) * OW + ow) * C + c] / (float)window_count(oh, ow);
    dx[i] = sum;
}
#endif
#endif /* KH */

/* y[n, c] = mean of x[n, :, :, c]; -D HW C. */
#ifdef GLOBAL_AVGPOOL2D
__kernel void global_avgpool2d(__global const float *restrict x, __global float *restrict y,
                               int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * C)
        return;
    const int n = i / C, c = i % C;
    float sum = 0.0f;
    for (int p = 0; p < HW; p++)
        sum += x[(n * HW + p) * C + c];
    y[i] = sum / (float)HW;
}
#endif

/* dx[n, p, c] = dy[n, c] / HW. */
#ifdef GLOBAL_AVGPOOL2D_GRAD
__kernel void global_avgpool2d_grad(__global const float *restrict dy, __global float *restrict dx,
                                    int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * HW * C)
        return;
    const int c = i % C, n = i / (HW * C);
    dx[i] = dy[n * C + c] / (float)HW;
}
#endif
