/* A convolution of few input channels (a network's stem: 1 to 4), computed directly: each
 * work-item takes MR neighbouring pixels of one output row by NR = VW * NV filters, reading each
 * input value of the window rows they span once and multiplying it by the filters' weights of
 * every tap that reads it, with the bias, a residual and the activation as it stores (common.h's
 * `epilogue`). With so few channels the implicit GEMM (conv2d.cl: conv2d_forward) spends more on
 * each tap's window bookkeeping than on its one to four multiplications, and im2col + matmul
 * writes and reads K = KH * KW * C floats per output pixel in two launches
 * (cnnc/backends/opencl/bind_conv_rows.py says what was measured).
 *
 * Geometry (-D) as conv2d.cl's (groups == 1): H W C input, OH OW F output, KH KW, SH SW, DH DW,
 *   PT PL. Tiling (-D): MR pixels (the binder cuts each row evenly), VW, NV; or with -D PX
 *   (pixel vectors, below) MR <= VW pixels in the lanes of one vector, PX filters. Epilogue (-D):
 *   HAS_BIAS, HAS_RESIDUAL, ACT_<NAME>. Gated input (-D GATED=1 GS0..GS3): as conv2d.cl's, x
 *   read as x * gate.
 * Launch: dim 0 = row blocks (batch * OH * ceil(OW / MR)), dim 1 = filter blocks (F / NR).
 * Max pooling as it stores (-D POOL=1 POOL_H POOL_W, bind_conv_maxpool.py): y is the
 *   POOL_H x POOL_W map of 2x2 windows at stride 2 over the OH x OW convolution, each the max
 *   of its cells after the epilogue. A work-item takes the two output rows of one pooled row,
 *   MR (even) pixels of each, one row after the other (the accumulators of one row, and the
 *   MR / 2 x NV maxima between them); a window cut short by the map's bottom or right edge
 *   keeps its real cells. Launch: dim 0 = batch * POOL_H * ceil(POOL_W / (MR / 2)). With
 *   -D POOL_AVG=1 each window's mean instead (whole windows only: pool_store.h).
 */
#include "tile.h"
#include "pool_store.h"

#if GATED
#define GATE_PARAM , __global const float *restrict gate
#define GATE_HELPER_PARAM , __global const float *gate
#define GATE_ARG , gate
#define GATE_AT(n, ih, iw, c) gate[(n) * GS0 + (ih) * GS1 + (iw) * GS2 + (c) * GS3]
#else
#define GATE_PARAM
#define GATE_HELPER_PARAM
#define GATE_ARG
#define GATE_AT(n, ih, iw, c) 1.0f
#endif

/* input columns a block's window rows span */
#define SPAN ((MR - 1) * SW + (KW - 1) * DW + 1)

/* acc[r][v] = the MR pixels' sums of output row oh of image n, from input column iw0 on, for
 * filters f0.. (acc zeroed before) */
#define ACCUMULATE_ROW(acc, n, oh, iw0, f0)                                                   \
    do {                                                                                      \
        _Pragma("unroll") for (int kh = 0; kh < KH; kh++) {                                   \
            const int ih = (oh) * SH - PT + kh * DH;                                          \
            if (ih < 0 || ih >= H)                                                            \
                continue;                                                                     \
            __global const float *in_row = x + ((n) * H + ih) * W * C;                        \
            _Pragma("unroll") for (int j = 0; j < SPAN; j++) {                                \
                const int iw = (iw0) + j;                                                     \
                if (iw < 0 || iw >= W)                                                        \
                    continue;                                                                 \
                _Pragma("unroll") for (int c = 0; c < C; c++) {                               \
                    const float in = in_row[iw * C + c] * GATE_AT((n), ih, iw, c);            \
                    /* tap kw of pixel r reads column r * SW + kw * DW */                     \
                    _Pragma("unroll") for (int r = 0; r < MR; r++) {                          \
                        const int t = j - r * SW;                                             \
                        if (t >= 0 && t % DW == 0 && t / DW < KW) {                           \
                            __global const float *wk =                                        \
                                w + ((kh * KW + t / DW) * C + c) * F + (f0);                  \
                            _Pragma("unroll") for (int v = 0; v < NV; v++)                    \
                                acc[r][v] = fma((floatV)(in), LOADV(wk + v * VW), acc[r][v]); \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#if PX
/* Pixel vectors (-D PX = filters per work-item): the lanes of a vector are MR <= VW neighbouring
 * output pixels of one row (not VW filters), and a work-item holds PX such vectors, one per
 * filter f0 .. f0 + PX - 1: each tap's input window is one vector of pixels times one broadcast
 * weight. A stem of few filters (LeNet-5's 6: float2 vectors of filters, 1/8 of an AVX-512
 * FMA's lanes) then fills whole vectors, and its activation runs on whole vectors too.
 * Launch: dim 0 = row blocks as above (pooled rows with POOL), dim 1 = F / PX filter blocks.
 * The stores are lane by lane (the output's pixels lie F apart). */
#if HAS_ACT_GRAD
#error "the pixel-vector row kernel is a forward convolution's"
#endif
#if MR > VW
#error "pixel vectors: MR pixels must fit a vector of VW lanes"
#endif
/* a pooled window's fold starts from this, one lane at a time (pool_store.h's on vectors) */
#if POOL_AVG
#define POOL_START1 0.0f
#else
#define POOL_START1 (-INFINITY)
#endif
/* input columns a vector of VW pixels' windows span (lanes past MR read in-bounds or zero),
 * and the private copy of them: two whole vectors where they fit (one shuffle a tap) */
#define PX_SPAN ((VW - 1) * SW + (KW - 1) * DW + 1)
#if PX_SPAN <= 2 * VW
#define PX_SPAN_MEM (2 * VW)
#else
#define PX_SPAN_MEM PX_SPAN
#endif
/* lane numbers, a shuffle's mask */
#if VW == 2
#define PX_LANES ((uint2)(0, 1))
#elif VW == 4
#define PX_LANES ((uint4)(0, 1, 2, 3))
#elif VW == 8
#define PX_LANES ((uint8)(0, 1, 2, 3, 4, 5, 6, 7))
#elif VW == 16
#define PX_LANES ((uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#else
#error "pixel vectors: VW must be 2, 4, 8 or 16"
#endif

/* The VW pixels' input columns of window row ih (image n, channel c) from column iw0 on, as
 * a vector per tap kw: win[kw]. */
static void px_windows(floatV win[KW], __global const float *x, int n, int ih, int iw0,
                       int c GATE_HELPER_PARAM)
{
    __global const float *in_row = x + (n * H + ih) * W * C;
    /* the window row's columns once, zero in the padding: each read from a column clamped
     * into the row and then selected (branches here, per column, ran the LeNet-5 stem at 0.7x
     * the speed) */
    float span[PX_SPAN_MEM];
#pragma unroll
    for (int j = 0; j < PX_SPAN_MEM; j++) {
        const int iw = iw0 + j;
        const int at = clamp(iw, 0, W - 1);
        const float v = in_row[at * C + c] * GATE_AT(n, ih, at, c);
        span[j] = (j < PX_SPAN && iw >= 0 && iw < W) ? v : 0.0f;
    }
#if PX_SPAN <= 2 * VW
    /* each tap's pixels as one shuffle of the span's two vectors */
    const floatV lo = LOADV(span), hi = LOADV(span + VW);
#pragma unroll
    for (int kw = 0; kw < KW; kw++)
        win[kw] = shuffle2(lo, hi, PX_LANES * (uint)SW + (uint)(kw * DW));
#else
#pragma unroll
    for (int kw = 0; kw < KW; kw++) {
        float lanes[VW];
#pragma unroll
        for (int r = 0; r < VW; r++)
            lanes[r] = span[r * SW + kw * DW];
        win[kw] = LOADV(lanes);
    }
#endif
}

/* acc[p] += the windows' products with filter f0 + p's kernel row kh */
static void px_taps(floatV acc[PX], const floatV win[KW], __global const float *w, int kh,
                    int c, int f0)
{
#pragma unroll
    for (int kw = 0; kw < KW; kw++) {
        __global const float *wk = w + ((kh * KW + kw) * C + c) * F + f0;
#pragma unroll
        for (int p = 0; p < PX; p++)
            acc[p] = fma(win[kw], (floatV)(wk[p]), acc[p]);
    }
}

/* acc[d][p] = the sums of the VW pixels from output column (iw0 + PL) / SW of row oh0 + d,
 * image n, for filter f0 + p, for the ROWS (1 or 2) rows d; with SH = DH = 1 two rows share
 * their KH - 1 common input rows' windows (LeNet-5's pooled stem: 6 input rows instead of 10) */
static void px_accumulate(floatV acc[2][PX], int rows, __global const float *x,
                          __global const float *w, int n, int oh0, int iw0,
                          int f0 GATE_HELPER_PARAM)
{
#pragma unroll
    for (int d = 0; d < 2; d++)
#pragma unroll
        for (int p = 0; p < PX; p++)
            acc[d][p] = (floatV)(0.0f);
#if SH == 1 && DH == 1
#pragma unroll
    for (int t = 0; t <= KH; t++) {
        const int ih = oh0 - PT + t;
        if (ih < 0 || ih >= H || (t == KH && rows < 2))
            continue;
#pragma unroll
        for (int c = 0; c < C; c++) {
            floatV win[KW];
            px_windows(win, x, n, ih, iw0, c GATE_ARG);
            if (t < KH)
                px_taps(acc[0], win, w, t, c, f0);
            if (t > 0 && rows > 1)
                px_taps(acc[1], win, w, t - 1, c, f0);
        }
    }
#else
    for (int d = 0; d < rows; d++) {
#pragma unroll
        for (int kh = 0; kh < KH; kh++) {
            const int ih = (oh0 + d) * SH - PT + kh * DH;
            if (ih < 0 || ih >= H)
                continue;
#pragma unroll
            for (int c = 0; c < C; c++) {
                floatV win[KW];
                px_windows(win, x, n, ih, iw0, c GATE_ARG);
                px_taps(acc[d], win, w, kh, c, f0);
            }
        }
    }
#endif
}

/* the epilogue of filter f's vector of pixels, pixel r at flat index at0 + r * F (lanes from
 * `valid` on are never stored, nor their residual read) */
static floatV px_epilogue(floatV value, __global const float *bias,
                          __global const float *residual, int f, int at0, int valid)
{
#if HAS_BIAS
    value += bias[f];
#endif
#if HAS_RESIDUAL
    float lanes[VW];
#pragma unroll
    for (int r = 0; r < VW; r++)
        lanes[r] = r < valid ? residual[at0 + r * F] : 0.0f;
    value += LOADV(lanes);
#endif
    return ACTIVATE(value);
}

#if !POOL
#define ROW_BLOCKS ((OW + MR - 1) / MR)

__kernel void conv2d_rows(__global const float *restrict x, __global const float *restrict w,
                          __global const float *restrict bias, __global float *restrict y,
                          int batch RESIDUAL_PARAM GATE_PARAM)
{
    const int b = (int)get_global_id(0), f0 = (int)get_global_id(1) * PX;
    const int row = b / ROW_BLOCKS, ow0 = (b % ROW_BLOCKS) * MR; /* row: n * OH + oh */
    if (row >= batch * OH)
        return;
    const int n = row / OH, oh = row % OH, valid = min(MR, OW - ow0);
    floatV acc[2][PX];
    px_accumulate(acc, 1, x, w, n, oh, ow0 * SW - PL, f0 GATE_ARG);
    const int at0 = (row * OW + ow0) * F;
#pragma unroll
    for (int p = 0; p < PX; p++) {
        float lanes[VW];
        STOREV(px_epilogue(acc[0][p], bias, RESIDUAL, f0 + p, at0 + f0 + p, valid), lanes);
#pragma unroll
        for (int r = 0; r < MR; r++)
            if (r < valid)
                y[at0 + r * F + f0 + p] = lanes[r];
    }
}

#else
#if MR % 2
#error "a pooling row kernel takes whole windows: MR must be even"
#endif
#define ROW_BLOCKS ((POOL_W + MR / 2 - 1) / (MR / 2))

__kernel void conv2d_rows(__global const float *restrict x, __global const float *restrict w,
                          __global const float *restrict bias, __global float *restrict y,
                          int batch RESIDUAL_PARAM GATE_PARAM)
{
    const int b = (int)get_global_id(0), f0 = (int)get_global_id(1) * PX;
    const int row = b / ROW_BLOCKS, ow0 = (b % ROW_BLOCKS) * MR; /* row: n * POOL_H + ph */
    if (row >= batch * POOL_H)
        return;
    const int n = row / POOL_H, valid = min(MR, OW - ow0);
    /* each filter's window folds, lane r the pooled pixel ow0 / 2 + r */
    float best[PX][MR / 2];
    const int oh0 = (row % POOL_H) * 2;
    /* the last pooled row of an odd map: its window's first row alone */
    floatV acc[2][PX];
    px_accumulate(acc, min(2, OH - oh0), x, w, n, oh0, ow0 * SW - PL, f0 GATE_ARG);
#pragma unroll
    for (int dr = 0; dr < 2; dr++) {
        const int oh = oh0 + dr;
        if (oh >= OH)
            break;
        const int at0 = ((n * OH + oh) * OW + ow0) * F;
#pragma unroll
        for (int p = 0; p < PX; p++) {
            float lanes[VW];
            STOREV(px_epilogue(acc[dr][p], bias, RESIDUAL, f0 + p, at0 + f0 + p, valid),
                   lanes);
#pragma unroll
            for (int r = 0; r < MR / 2; r++) {
                float m = dr ? best[p][r] : POOL_START1;
#pragma unroll
                for (int k = 0; k < 2; k++)
                    if (2 * r + k < valid)
                        m = POOL_JOIN(m, lanes[2 * r + k]);
                best[p][r] = m;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < MR / 2; r++) {
        const int pw = ow0 / 2 + r;
        if (pw < POOL_W) {
#pragma unroll
            for (int p = 0; p < PX; p++)
                y[(row * POOL_W + pw) * F + f0 + p] = POOL_END(best[p][r]);
        }
    }
}
#endif

#else /* !PX */
#if !POOL
#define ROW_BLOCKS ((OW + MR - 1) / MR)

__kernel void conv2d_rows(__global const float *restrict x, __global const float *restrict w,
                          __global const float *restrict bias, __global float *restrict y,
                          int batch RESIDUAL_PARAM GATE_PARAM)
{
    const int b = (int)get_global_id(0), f0 = (int)get_global_id(1) * NR;
    const int row = b / ROW_BLOCKS, ow0 = (b % ROW_BLOCKS) * MR; /* row: n * OH + oh */
    if (row >= batch * OH)
        return;
    const int n = row / OH, oh = row % OH, iw0 = ow0 * SW - PL;
    floatV acc[MR][NV];
    zero_block(acc);
    ACCUMULATE_ROW(acc, n, oh, iw0, f0);

    /* the row's last block may hold fewer than MR pixels (an `if` and not a `break`: the
     * compiler does not unroll a loop left early) */
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (ow0 + r < OW) {
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int f = f0 + v * VW, at = (row * OW + ow0 + r) * F + f;
                STOREV(epilogue(acc[r][v], bias, RESIDUAL, f, at), y + at);
            }
        }
    }
}

#else
#if MR % 2
#error "a pooling row kernel takes whole windows: MR must be even"
#endif
#define ROW_BLOCKS ((POOL_W + MR / 2 - 1) / (MR / 2))

__kernel void conv2d_rows(__global const float *restrict x, __global const float *restrict w,
                          __global const float *restrict bias, __global float *restrict y,
                          int batch RESIDUAL_PARAM GATE_PARAM)
{
    const int b = (int)get_global_id(0), f0 = (int)get_global_id(1) * NR;
    const int row = b / ROW_BLOCKS, ow0 = (b % ROW_BLOCKS) * MR; /* row: n * POOL_H + ph */
    if (row >= batch * POOL_H)
        return;
    const int n = row / POOL_H, iw0 = ow0 * SW - PL;
    floatV best[MR / 2][NV];
    for (int dr = 0; dr < 2; dr++) {
        const int oh = (row % POOL_H) * 2 + dr;
        if (oh >= OH) /* the last pooled row of an odd map: its window's second row */
            break;
        floatV acc[MR][NV];
        zero_block(acc);
        ACCUMULATE_ROW(acc, n, oh, iw0, f0);
        /* each window's max over its cells in this row, after the epilogue */
#pragma unroll
        for (int r = 0; r < MR / 2; r++) {
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int f = f0 + v * VW;
                floatV m = dr ? best[r][v] : POOL_START;
#pragma unroll
                for (int k = 0; k < 2; k++) {
                    const int ow = ow0 + 2 * r + k, at = ((n * OH + oh) * OW + ow) * F + f;
                    if (ow < OW)
                        m = POOL_JOIN(m, epilogue(acc[2 * r + k][v], bias, RESIDUAL, f, at));
                }
                best[r][v] = m;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < MR / 2; r++) {
        const int pw = ow0 / 2 + r;
        if (pw < POOL_W) {
#pragma unroll
            for (int v = 0; v < NV; v++)
                STOREV(POOL_END(best[r][v]), y + (row * POOL_W + pw) * F + f0 + v * VW);
        }
    }
}
#endif
#endif /* PX */
