/* Pooling over NHWC windows and its gradients.
 *
 * Window geometry (-D, from cnnc/ir/convpool.py pool_geometry): H W C input, OH OW output,
 * KH KW window, SH SW strides, DH DW dilations, PT PB PL PR padding before and after; the batch
 * size is the argument `batch`. Padding cells never win a max and are not counted in a mean
 * (Keras) unless COUNT_PAD=1 (ONNX's count_include_pad): then the declared pads count, but not
 * the cells a ceil_mode window reaches past them.
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
#ifndef DH
#define DH 1
#endif
#ifndef DW
#define DW 1
#endif
#ifndef COUNT_PAD
#define COUNT_PAD 0
#endif
/* The window's extent from its first cell to its last, dilation included. */
#define SPAN_H (DH * (KH - 1) + 1)
#define SPAN_W (DW * (KW - 1) + 1)

/* The first and last window along one axis that cover input position i: from
 * max(0, ceil((i + P - K + 1) / S)) to min(O - 1, (i + P) / S). */
#define FIRST_WINDOW(i, P, K, S) ((i) + (P) - (K) + 1 <= 0 ? 0 : ((i) + (P) - (K) + (S)) / (S))
#define LAST_WINDOW(i, P, S, O) min((O) - 1, ((i) + (P)) / (S))

/* Runs the statement after it for every window (oh, ow) that covers input cell (ih, iw): of the
 * windows whose span holds the cell, those with a dilated tap on it. */
#define FOR_COVERING_WINDOWS(ih, iw, oh, ow)                                                  \
    for (int oh = FIRST_WINDOW(ih, PT, SPAN_H, SH); oh <= LAST_WINDOW(ih, PT, SH, OH); oh++)  \
        if (((ih) + PT - oh * SH) % DH == 0)                                                  \
            for (int ow = FIRST_WINDOW(iw, PL, SPAN_W, SW); ow <= LAST_WINDOW(iw, PL, SW, OW); \
                 ow++)                                                                        \
                if (((iw) + PL - ow * SW) % DW == 0)

/* Runs the statement after it for every real (unpadded) input cell (ih, iw) of window
 * (oh, ow), row by row. The trip counts stay the constants KH and KW, so the loops unroll. */
#define FOR_WINDOW_CELLS(oh, ow, ih, iw)                                                      \
    for (int kh_ = 0, ih = (oh) * SH - PT; kh_ < KH; kh_++, ih += DH)                         \
        if (ih >= 0 && ih < H)                                                                \
            for (int kw_ = 0, iw = (ow) * SW - PL; kw_ < KW; kw_++, iw += DW)                 \
                if (iw >= 0 && iw < W)

/* Where work-item i works: VW channels from c at position (h, w) of image n, in a tensor of
 * rows x cols positions (the input's H x W or the output's OH x OW). */
typedef struct {
    int n, h, w, c;
} Place;

static Place place_of(int i, int rows, int cols)
{
    Place p;
    p.c = (i % CV) * VW;
    p.w = (i / CV) % cols;
    p.h = (i / (CV * cols)) % rows;
    p.n = i / (CV * cols * rows);
    return p;
}

/* Offsets of (n, h, w, c) in the input (x, dx) and in the output (y, dy). */
static int input_at(int n, int h, int w, int c)
{
    return ((n * H + h) * W + w) * C + c;
}

static int output_at(int n, int h, int w, int c)
{
    return ((n * OH + h) * OW + w) * C + c;
}

/* The first maximum of window (oh, ow) per channel, as the input cell ih * W + iw (-1 when the
 * window has no real cell). */
static intV window_argmax(__global const float *x, int n, int oh, int ow, int c)
{
    floatV best = (floatV)(-INFINITY);
    intV where = (intV)(-1);
    FOR_WINDOW_CELLS(oh, ow, ih, iw) {
        const floatV v = LOADV(x + input_at(n, ih, iw, c));
        /* strictly greater: a later equal value does not displace the first maximum */
        const intV take = v > best || where < (intV)(0);
        best = select(best, v, take);
        where = select(where, (intV)(ih * W + iw), take);
    }
    return where;
}

/* The rows and columns a mean counts: the real ones, or with COUNT_PAD the declared pads too. */
#if COUNT_PAD
#define ROW_LO (-PT)
#define ROW_HI (H + PB)
#define COL_LO (-PL)
#define COL_HI (W + PR)
#else
#define ROW_LO 0
#define ROW_HI H
#define COL_LO 0
#define COL_HI W
#endif

/* The number of counted cells in window (oh, ow). */
static int window_count(int oh, int ow)
{
    const int h0 = oh * SH - PT, w0 = ow * SW - PL;
#if DH == 1 && DW == 1
    const int rows = min(h0 + KH, ROW_HI) - max(h0, ROW_LO);
    const int cols = min(w0 + KW, COL_HI) - max(w0, COL_LO);
#else
    int rows = 0, cols = 0;
    for (int k = 0; k < KH; k++)
        rows += h0 + k * DH >= ROW_LO && h0 + k * DH < ROW_HI;
    for (int k = 0; k < KW; k++)
        cols += w0 + k * DW >= COL_LO && w0 + k * DW < COL_HI;
#endif
    return rows * cols;
}

/* -D PARTS (2 to 4): the input is the channel concatenation of PARTS maps (maxpool2d_concat,
 * cnnc/ir/pool_concat.py), read where they lie: x is the first, x1.. the kernel's last
 * arguments (PARTS_PARAM), part p holding C<p> of the C channels (VW divides each). A
 * work-item's VW channels lie inside one part: it reads that part's cells, `channels` floats a
 * position apart, from its channel `c` in that part on. Only maxpool2d reads parts. */
#ifdef PARTS
#if PARTS == 2
#define PARTS_PARAM , __global const float *restrict x1
#elif PARTS == 3
#define PARTS_PARAM , __global const float *restrict x1, __global const float *restrict x2
#elif PARTS == 4
#define PARTS_PARAM , __global const float *restrict x1, __global const float *restrict x2, \
                    __global const float *restrict x3
#else
#error "pool.cl: PARTS is 2 to 4"
#endif
#if C0 + C1 + (PARTS > 2 ? C2 : 0) + (PARTS > 3 ? C3 : 0) != C
#error "pool.cl: the parts' channels C0.. do not add up to C"
#endif
#else
#define PARTS_PARAM
#endif

#ifdef MAXPOOL2D
__kernel void maxpool2d(__global const float *restrict x, __global float *restrict y,
                        int batch PARTS_PARAM)
{
    const int i = get_global_id(0);
    if (i >= batch * OH * OW * CV)
        return;
    const Place o = place_of(i, OH, OW);
    floatV best = (floatV)(-INFINITY);
#ifdef PARTS
    /* the part holding channel o.c, and that channel's place in it */
    int c = o.c, channels = C0;
    __global const float *src = x;
    if (c >= C0) {
        c -= C0;
        src = x1;
        channels = C1;
#if PARTS > 2
        if (c >= C1) {
            c -= C1;
            src = x2;
            channels = C2;
#if PARTS > 3
            if (c >= C2) {
                c -= C2;
                src = x3;
                channels = C3;
            }
#endif
        }
#endif
    }
    FOR_WINDOW_CELLS(o.h, o.w, ih, iw)
        best = max(best, LOADV(src + ((o.n * H + ih) * W + iw) * channels + c));
#else
    FOR_WINDOW_CELLS(o.h, o.w, ih, iw)
        best = max(best, LOADV(x + input_at(o.n, ih, iw, o.c)));
#endif
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
    const Place o = place_of(i, OH, OW);
    floatV sum = (floatV)(0.0f);
    FOR_WINDOW_CELLS(o.h, o.w, ih, iw)
        sum += LOADV(x + input_at(o.n, ih, iw, o.c));
    STOREV(sum / (float)window_count(o.h, o.w), y + i * VW);
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
    const Place p = place_of(i, H, W);
    floatV sum = (floatV)(0.0f);
    FOR_COVERING_WINDOWS(p.h, p.w, oh, ow) {
        const intV hit = window_argmax(x, p.n, oh, ow, p.c) == (intV)(p.h * W + p.w);
        const floatV g = LOADV(dy + output_at(p.n, oh, ow, p.c));
        sum += select((floatV)(0.0f), g, hit);
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
    const Place o = place_of(i, OH, OW);
    const intV where = window_argmax(x, o.n, o.h, o.w, o.c);
    const floatV g = LOADV(dy + i * VW);
    FOR_WINDOW_CELLS(o.h, o.w, ih, iw) {
        const intV hit = where == (intV)(ih * W + iw);
        STOREV(select((floatV)(0.0f), g, hit), dx + input_at(o.n, ih, iw, o.c));
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
    const Place p = place_of(i, H, W);
    floatV sum = (floatV)(0.0f);
    FOR_COVERING_WINDOWS(p.h, p.w, oh, ow)
        sum += LOADV(dy + output_at(p.n, oh, ow, p.c)) / (float)window_count(oh, ow);
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
