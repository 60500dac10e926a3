/* A depthwise convolution and the 1x1 convolution reading it, forward, fused (NHWC activations,
 * (KH, KW, C, M) depthwise and (1, 1, C*M, K) pointwise kernels; cnnc/ir/depthwise_pointwise.py):
 *
 *   d[p, f] = act_dw(db[f] + sum over taps of x[window tap of pixel p, f / M] * dw[tap, f])
 *   y[p, k] = act_pw(pb[k] + sum over f < F of d[p, f] * pw[f, k]),   F = C * M
 *
 * d, the depthwise map, is never written: each work-item computes MR output pixels (flat
 * (n, oh, ow)) by NR = VW * NV pointwise channels, and walks the F depthwise channels in
 * vectors of VD, computing that slice of d for its MR pixels (each tap's VD weights loaded once
 * for the MR pixels, taps in the padding skipped, as depthwise.cl does) and adding its VD rank-1
 * updates to the pointwise block at once. With NR = K (the binder's choice where registers
 * allow) every d value is computed once.
 *
 * Geometry (-D): H W C input, M depth multiplier, OH OW output, KH KW kernel, SH SW strides,
 *   DH DW dilation, PT PL padding before (top, left), K pointwise filters. The batch comes as
 *   the argument `batch`.
 * Block (-D): MR pixels, VW vector width, NV vectors (VW * NV divides K), VD the depthwise
 *   part's vector width (divides F).
 * Epilogues (-D): DW_BIAS, PW_BIAS (0 or 1: the bias arguments are read), DW_ACT, PW_ACT (0 or
 *   1: ACTIVATE, common.h's ACT_<NAME>, after that part; the op allows one activation).
 * Launch: dim 0 = pixel blocks (the large count), dim 1 = pointwise channel blocks.
 *
 * depthwise_pointwise_staged (CPUs): the same op in two phases per work-item, so that neither
 * part's registers crowd the other's. First the depthwise slice of its MR pixels, all F
 * channels, VD at a time, into a private array (MR * F floats: the binder keeps it within a
 * part of the L1 cache); then the 1x1 convolution of that array as a GEMM's register blocks of
 * MR pixels by NR = VW * NV filters, over all K filters in turn (each depthwise value still
 * computed once, whatever NR). In the one-phase kernel the pointwise block, the depthwise
 * slices and their weights share the vector registers, which held mobilenet_mini's blocks to 2
 * pixels a work-item (AVX2); measured on pocl (2-core Zen 3, batch 256) it ran slower than the
 * depthwise and 1x1 kernels apart. Launch: dim 0 = pixel blocks, dim 1 = 1.
 */
#include "common.h"
#include "tile.h" /* zero_block */
#include "depthwise.h"

#define F (C * M)
#define NR (VW * NV)

#if VD == 1
typedef float floatD;
#define LOADD(p) (*(p))
#define STORED(v, p) (*(p) = (v))
#else
typedef CAT(float, VD) floatD;
#define LOADD(p) CAT(vload, VD)(0, (p))
#define STORED(v, p) CAT(vstore, VD)((v), 0, (p))
#endif

/* The inputs of depthwise channels f .. f + VD - 1 at the pixel whose channels start at `at`:
 * channels f .. with M == 1, else channel (f + i) / M for lane i. */
static floatD depthwise_inputs(__global const float *x, int at, int f)
{
#if M == 1
    return LOADD(x + at + f);
#else
    float lanes[VD];
#pragma unroll
    for (int i = 0; i < VD; i++)
        lanes[i] = x[at + (f + i) / M];
    return LOADD(lanes);
#endif
}

/* The two parts' epilogues, every kernel's: the depthwise channels f0 .. f0 + VD - 1 of a pixel
 * and the 1x1 filters k .. k + VW - 1, after their sums. */
static floatD depthwise_epilogue(floatD v, __global const float *restrict db, int f0)
{
#if DW_BIAS
    v += LOADD(db + f0);
#endif
#if DW_ACT
    v = ACTIVATE(v);
#endif
    return v;
}

static floatV pointwise_epilogue(floatV v, __global const float *restrict pb, int k)
{
#if PW_BIAS
    v += LOADV(pb + k);
#endif
#if PW_ACT
    v = ACTIVATE(v);
#endif
    return v;
}

__kernel void depthwise_pointwise(__global const float *restrict x,
                                  __global const float *restrict dw,
                                  __global const float *restrict db,
                                  __global const float *restrict pw,
                                  __global const float *restrict pb, __global float *restrict y,
                                  int batch)
{
    const int P = batch * OH * OW;
    const int p0 = (int)get_global_id(0) * MR, k0 = (int)get_global_id(1) * NR;
    int ih0[MR], iw0[MR], base[MR];
    pixel_block(p0, P, ih0, iw0, base);
    floatV acc[MR][NV];
    zero_block(acc);

    for (int f0 = 0; f0 < F; f0 += VD) {
        floatD d[MR];
#pragma unroll
        for (int r = 0; r < MR; r++)
            d[r] = (floatD)(0.0f);
#pragma unroll
        for (int kh = 0; kh < KH; kh++) {
#pragma unroll
            for (int kw = 0; kw < KW; kw++) {
                const floatD wv = LOADD(dw + (kh * KW + kw) * F + f0);
#pragma unroll
                for (int r = 0; r < MR; r++) {
                    const int at = tap_at(ih0[r], iw0[r], base[r], kh, kw);
                    if (at >= 0)
                        d[r] = fma(depthwise_inputs(x, at, f0), wv, d[r]);
                }
            }
        }
        /* The slice of d, lane by lane for the pointwise part's broadcasts. */
        float lanes[MR][VD];
#pragma unroll
        for (int r = 0; r < MR; r++)
            STORED(depthwise_epilogue(d[r], db, f0), lanes[r]);
#pragma unroll
        for (int i = 0; i < VD; i++) {
            floatV b[NV];
#pragma unroll
            for (int v = 0; v < NV; v++)
                b[v] = LOADV(pw + (f0 + i) * K + k0 + v * VW);
#pragma unroll
            for (int r = 0; r < MR; r++)
#pragma unroll
                for (int v = 0; v < NV; v++)
                    acc[r][v] = fma((floatV)(lanes[r][i]), b[v], acc[r][v]);
        }
    }

#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (p0 + r >= P)
            break;
#pragma unroll
        for (int v = 0; v < NV; v++)
            STOREV(pointwise_epilogue(acc[r][v], pb, k0 + v * VW),
                   y + (p0 + r) * K + k0 + v * VW);
    }
}

/* The two phases as one kernel: d for MR pixels by F channels into `d`, then d . pw. */
__kernel void depthwise_pointwise_staged(__global const float *restrict x,
                                         __global const float *restrict dw,
                                         __global const float *restrict db,
                                         __global const float *restrict pw,
                                         __global const float *restrict pb,
                                         __global float *restrict y, int batch)
{
    const int P = batch * OH * OW;
    const int p0 = (int)get_global_id(0) * MR;
    int ih0[MR], iw0[MR], base[MR];
    pixel_block(p0, P, ih0, iw0, base);
    float d[MR][F];

    for (int f0 = 0; f0 < F; f0 += VD) {
        floatD acc[MR];
#pragma unroll
        for (int r = 0; r < MR; r++)
            acc[r] = (floatD)(0.0f);
#pragma unroll
        for (int kh = 0; kh < KH; kh++) {
#pragma unroll
            for (int kw = 0; kw < KW; kw++) {
                const floatD wv = LOADD(dw + (kh * KW + kw) * F + f0);
#pragma unroll
                for (int r = 0; r < MR; r++) {
                    const int at = tap_at(ih0[r], iw0[r], base[r], kh, kw);
                    if (at >= 0)
                        acc[r] = fma(depthwise_inputs(x, at, f0), wv, acc[r]);
                }
            }
        }
#pragma unroll
        for (int r = 0; r < MR; r++)
            STORED(depthwise_epilogue(acc[r], db, f0), &d[r][f0]);
    }

    for (int k0 = 0; k0 < K; k0 += NR) {
        floatV out[MR][NV];
        zero_block(out);
        for (int f = 0; f < F; f++) {
            floatV b[NV];
            float a[MR];
            load_row(b, pw + f * K + k0);
#pragma unroll
            for (int r = 0; r < MR; r++)
                a[r] = d[r][f];
            rank1_update(out, a, b);
        }
#pragma unroll
        for (int r = 0; r < MR; r++) {
            /* a guard, not an early exit: the filter loop goes on for the rows before */
            if (p0 + r < P) {
#pragma unroll
                for (int v = 0; v < NV; v++)
                    STOREV(pointwise_epilogue(out[r][v], pb, k0 + v * VW),
                           y + (p0 + r) * K + k0 + v * VW);
            }
        }
    }
}

#ifdef DEPTHWISE_POINTWISE_ROWS
/* depthwise_pointwise_rows (CPUs): the staged kernel's two phases, each work-item MR consecutive
 * output pixels of one output row (not of the flat pixel index), so that the depthwise phase
 * reads as depthwise.cl's depthwise_rows: the MR windows of a row of taps overlap, each input
 * column they read is loaded once and used by every (pixel, tap) reading it, one bounds check
 * per row of taps and per column instead of per tap and pixel (with 24 channels the checks and
 * the window arithmetic, not the FMAs, bounded the staged kernel). MR is the binder's choice
 * from OW (blocks that cut each row evenly), GR (-D) the GEMM phase's rows per register block.
 * Launch: dim 0 = row blocks (batch * OH * ceil(OW / MR)), dim 1 = 1. */
/* Padded filters (-D KP > K, conv2d.cl's -D FP for this kernel): pw read as an F x KP matrix
 * whose columns K.. are zeros (the binder pads it once), so that blocks of the widest vectors
 * cover K filters they do not divide (24 on AVX-512: float16, not float8); the vector holding
 * filter K - 1 is stored lane by lane, none after it. */
#ifndef KP
#define KP K
#endif
#if KP % NR || KP < K
#error "KP: the padded pointwise kernel's columns, a multiple of the block's (NR) from K on"
#endif

/* pointwise_epilogue's store of the filters k.. of an output pixel whose filters start at
 * `out` (all VW of them before K; with padded filters, the first K % VW or none after K). */
static void store_filters(floatV v, __global const float *pb, __global float *out,
                          int k)
{
#if KP == K
    STOREV(pointwise_epilogue(v, pb, k), out + k);
#else
    if (k + VW <= K) {
        STOREV(pointwise_epilogue(v, pb, k), out + k);
    } else if (k < K) {
        float lanes[VW];
        STOREV(v, lanes);
#pragma unroll
        for (int i = 0; i < K % VW; i++) {
#if PW_BIAS
            lanes[i] += pb[k + i];
#endif
#if PW_ACT
            lanes[i] = ACTIVATE(lanes[i]);
#endif
            out[k + i] = lanes[i];
        }
    }
#endif
}

#define SPAN ((MR - 1) * SW + (KW - 1) * DW + 1)
#define ROW_BLOCKS ((OW + MR - 1) / MR)

__kernel void depthwise_pointwise_rows(__global const float *restrict x,
                                       __global const float *restrict dw,
                                       __global const float *restrict db,
                                       __global const float *restrict pw,
                                       __global const float *restrict pb,
                                       __global float *restrict y, int batch)
{
    const int b = (int)get_global_id(0);
    const int row = b / ROW_BLOCKS, ow0 = (b % ROW_BLOCKS) * MR; /* row: n * OH + oh */
    if (row >= batch * OH)
        return;
    const int n = row / OH, oh = row % OH, iw0 = ow0 * SW - PL;
    float d[MR][F];

    for (int f0 = 0; f0 < F; f0 += VD) {
        floatD acc[MR];
#pragma unroll
        for (int r = 0; r < MR; r++)
            acc[r] = (floatD)(0.0f);
#pragma unroll
        for (int kh = 0; kh < KH; kh++) {
            const int ih = oh * SH - PT + kh * DH;
            if (ih < 0 || ih >= H)
                continue;
            const int row_at = (n * H + ih) * W * C;
            floatD wv[KW];
#pragma unroll
            for (int kw = 0; kw < KW; kw++)
                wv[kw] = LOADD(dw + (kh * KW + kw) * F + f0);
#pragma unroll
            for (int j = 0; j < SPAN; j++) {
                const int iw = iw0 + j;
                if (iw < 0 || iw >= W)
                    continue;
                const floatD in = depthwise_inputs(x, row_at + iw * C, f0);
#pragma unroll
                for (int r = 0; r < MR; r++) {
                    /* tap kw of pixel r reads column r * SW + kw * DW */
                    const int t = j - r * SW;
                    if (t >= 0 && t % DW == 0 && t / DW < KW)
                        acc[r] = fma(in, wv[t / DW], acc[r]);
                }
            }
        }
#pragma unroll
        for (int r = 0; r < MR; r++)
            STORED(depthwise_epilogue(acc[r], db, f0), &d[r][f0]);
    }

    /* The GEMM phase in register blocks of GR of the MR pixels (the last block's rows past MR
     * read zeros and store nothing): a block of GR by NR filters within the registers where
     * MR by NR would spill them. */
    const int out0 = (row * OW + ow0) * K;
#pragma unroll
    for (int r0 = 0; r0 < MR; r0 += GR) {
        for (int k0 = 0; k0 < KP; k0 += NR) {
            floatV out[GR][NV];
#pragma unroll
            for (int r = 0; r < GR; r++)
#pragma unroll
                for (int v = 0; v < NV; v++)
                    out[r][v] = (floatV)(0.0f);
            for (int f = 0; f < F; f++) {
                floatV bv[NV];
                load_row(bv, pw + f * KP + k0);
#pragma unroll
                for (int r = 0; r < GR; r++) {
                    const float a = r0 + r < MR ? d[r0 + r][f] : 0.0f;
#pragma unroll
                    for (int v = 0; v < NV; v++)
                        out[r][v] += a * bv[v];
                }
            }
            /* the row's last block may hold fewer than MR pixels (an `if`: the loops go on) */
#pragma unroll
            for (int r = 0; r < GR; r++) {
                if (r0 + r < MR && ow0 + r0 + r < OW) {
#pragma unroll
                    for (int v = 0; v < NV; v++)
                        store_filters(out[r][v], pb, y + out0 + (r0 + r) * K, k0 + v * VW);
                }
            }
        }
    }
}
#endif
