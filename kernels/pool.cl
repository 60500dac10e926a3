/* Pooling over NHWC windows and its gradients.
 *
 * Window geometry (-D, from cnnc/ir/convpool.py window_geometry): H W C input, OH OW output,
 * KH KW window, SH SW strides, PT PL padding before; the batch size is the argument `batch`.
 * Padding cells never win a max and are not counted in a mean (Keras).
 * Each work-item handles VW neighbouring channels (-D VW divides C) of one position, as one
 * vector: memory-bound kernels then move whole vectors, and the window arithmetic is shared by
 * VW channels. Launch: one dimension over positions x C/VW, rounded up (kernels check bounds).
 * Gradients never race: a gather (each input cell sums the windows that cover it, in a fixed
 * order), or for windows that do not overlap a scatter that writes each cell of a window once.
 */
#include "common.h"

#define CV (C / VW) /* channel vectors per position */

#if VW == 1
typedef int intV;
#else
typedef CAT(int, VW) intV;
#endif

#ifdef KH
/* Rows oh of the windows that cover input row ih: max(0, ceil((ih+PT-KH+1)/SH)) .. */
#define FIRST_WINDOW(i, P, K, S) ((i) + (P) - (K) + 1 <= 0 ? 0 : ((i) + (P) - (K) + (S)) / (S))
#define LAST_WINDOW(i, P, S, O) min((O) - 1, ((i) + (P)) / (S))

/* The first maximum of window (oh, ow) per channel, as a flat (kh, kw) index; padding skipped. */
static intV window_argmax(__global const float *restrict x, int n, int oh, int ow, int c)
{
    floatV best = (floatV)(-INFINITY);
    intV where = (intV)(-1);
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W)
                continue;
            const floatV v = LOADV(x + ((n * H + ih) * W + iw) * C + c);
            /* strictly greater: a later equal value does not displace the first maximum */
            const intV take = v > best || where < (intV)(0);
            best = select(best, v, take);
            where = select(where, (intV)(kh * KW + kw), take);
        }
    }
    return where;
}

/* The number of real (unpadded) cells in window (oh, ow). */
static int window_count(int oh, int ow)
{
    const int h0 = oh * SH - PT, w0 = ow * SW - PL;
    const int rows = min(h0 + KH, H) - max(h0, 0);
    const int cols = min(w0 + KW, W) - max(w0, 0);
    return rows * cols;
}

#ifdef MAXPOOL2D
__kernel void maxpool2d(__global const float *restrict x, __global float *restrict y,
                        int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * OH * OW * CV)
        return;
    const int c = (i % CV) * VW, ow = (i / CV) % OW, oh = (i / (CV * OW)) % OH;
    const int n = i / (CV * OW * OH);
    floatV best = (floatV)(-INFINITY);
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W)
                continue;
            best = max(best, LOADV(x + ((n * H + ih) * W + iw) * C + c));
        }
    }
    STOREV(best, y + i * VW);
}
#endif

#ifdef AVGPOOL2D
__kernel void avgpool2d(__global const float *restrict x, __global float *restrict y,
                        int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * OH * OW * CV)
        return;
    const int c = (i % CV) * VW, ow = (i / CV) % OW, oh = (i / (CV * OW)) % OH;
    const int n = i / (CV * OW * OH);
    floatV sum = (floatV)(0.0f);
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W)
                continue;
            sum += LOADV(x + ((n * H + ih) * W + iw) * C + c);
        }
    }
    STOREV(sum / (float)window_count(oh, ow), y + i * VW);
}
#endif

/* dx[n, ih, iw, c] = sum of dy over the windows whose first maximum is (ih, iw): a gather, for
 * any window overlap. */
#ifdef MAXPOOL2D_GRAD
__kernel void maxpool2d_grad(__global const float *restrict x, __global const float *restrict dy,
                             __global float *restrict dx, int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * H * W * CV)
        return;
    const int c = (i % CV) * VW, iw = (i / CV) % W, ih = (i / (CV * W)) % H;
    const int n = i / (CV * W * H);
    floatV sum = (floatV)(0.0f);
    for (int oh = FIRST_WINDOW(ih, PT, KH, SH); oh <= LAST_WINDOW(ih, PT, SH, OH); oh++) {
        for (int ow = FIRST_WINDOW(iw, PL, KW, SW); ow <= LAST_WINDOW(iw, PL, SW, OW); ow++) {
            const int mine = (ih - (oh * SH - PT)) * KW + (iw - (ow * SW - PL));
            const intV hit = window_argmax(x, n, oh, ow, c) == (intV)(mine);
            const floatV g = LOADV(dy + ((n * OH + oh) * OW + ow) * C + c);
            sum += select((floatV)(0.0f), g, hit);
        }
    }
    STOREV(sum, dx + i * VW);
}
#endif

/* The same for windows that do not overlap (SH >= KH, SW >= KW: the usual 2x2 stride 2): one
 * work-item per window writes dy to its first maximum and 0 to its other cells. Cells outside
 * every window are not written: bind.py zero-fills dx first when there are any. */
#ifdef MAXPOOL2D_GRAD_SCATTER
__kernel void maxpool2d_grad_scatter(__global const float *restrict x,
                                     __global const float *restrict dy,
                                     __global float *restrict dx, int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * OH * OW * CV)
        return;
    const int c = (i % CV) * VW, ow = (i / CV) % OW, oh = (i / (CV * OW)) % OH;
    const int n = i / (CV * OW * OH);
    const intV where = window_argmax(x, n, oh, ow, c);
    const floatV g = LOADV(dy + i * VW);
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh;
        if (ih < 0 || ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + kw;
            if (iw < 0 || iw >= W)
                continue;
            const intV hit = where == (intV)(kh * KW + kw);
            STOREV(select((floatV)(0.0f), g, hit), dx + ((n * H + ih) * W + iw) * C + c);
        }
    }
}
#endif

/* dx[n, ih, iw, c] = sum over the windows covering (ih, iw) of dy / (real cells of the window). */
#ifdef AVGPOOL2D_GRAD
__kernel void avgpool2d_grad(__global const float *restrict dy, __global float *restrict dx,
                             int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * H * W * CV)
        return;
    const int c = (i % CV) * VW, iw = (i / CV) % W, ih = (i / (CV * W)) % H;
    const int n = i / (CV * W * H);
    floatV sum = (floatV)(0.0f);
    for (int oh = FIRST_WINDOW(ih, PT, KH, SH); oh <= LAST_WINDOW(ih, PT, SH, OH); oh++)
        for (int ow = FIRST_WINDOW(iw, PL, KW, SW); ow <= LAST_WINDOW(iw, PL, SW, OW); ow++)
            sum += LOADV(dy + ((n * OH + oh) * OW + ow) * C + c) / (float)window_count(oh, ow);
    STOREV(sum, dx + i * VW);
}
#endif
#endif /* KH */

/* y[n, c] = mean of x[n, :, :, c]; -D HW C VW. */
#ifdef GLOBAL_AVGPOOL2D
__kernel void global_avgpool2d(__global const float *restrict x, __global float *restrict y,
                               int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * CV)
        return;
    const int n = i / CV, c = (i % CV) * VW;
    floatV sum = (floatV)(0.0f);
    for (int p = 0; p < HW; p++)
        sum += LOADV(x + (n * HW + p) * C + c);
    STOREV(sum / (float)HW, y + i * VW);
}
#endif

/* dx[n, p, c] = dy[n, c] / HW. */
#ifdef GLOBAL_AVGPOOL2D_GRAD
__kernel void global_avgpool2d_grad(__global const float *restrict dy, __global float *restrict dx,
                                    int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * HW * CV)
        return;
    const int c = (i % CV) * VW, n = i / (HW * CV);
    STOREV(LOADV(dy + n * C + c) / (float)HW, dx + i * VW);
}
#endif
