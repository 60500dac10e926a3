/* Depthwise 2-D convolution, forward, direct (NHWC activations, (KH, KW, C, M) kernels):
 *
 *   y[n, oh, ow, c*M + m] = act(bias[c*M + m] + sum over (kh, kw) of
 *                               x[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, c] * w[kh, kw, c, m])
 *
 * The kernel's flat index is (kh*KW + kw) * F + f for output channel f = c*M + m, so a tap's
 * weights for consecutive output channels are contiguous, like the output's channels: each
 * work-item computes MR consecutive output pixels (flat (n, oh, ow)) by NR = VW * NV
 * consecutive output channels, loads each tap's NV weight vectors once for its MR pixels, and
 * skips the taps in the padding (no GEMM: each output reads KH * KW inputs, not C).
 *
 * Geometry (-D): H W C input, M depth multiplier, OH OW output, KH KW kernel, SH SW strides,
 *   DH DW dilation, PT PL padding before (top, left). The batch comes as the argument `batch`.
 * Block (-D): MR pixels, VW vector width, NV vectors per work-item (VW * NV divides C * M).
 * Epilogue (-D): HAS_BIAS, ACT_<NAME> (common.h).
 * Launch: dim 0 = pixel blocks (the large count), dim 1 = channel blocks.
 */
#include "common.h"
#include "tile.h" /* zero_block */
#include "depthwise.h"

#define F (C * M)
#define NR (VW * NV)

#if M > 1 && VW > M && VW % M == 0
#if VW / M == 2
#define LOAD_INPUTS(p) vload2(0, (p))
#elif VW / M == 4
#define LOAD_INPUTS(p) vload4(0, (p))
#else
#define LOAD_INPUTS(p) vload8(0, (p))
#endif
/* Lane i of a vector of VW output channels reads input lane i / M (f is a multiple of VW, so
 * of M): the shuffle mask that repeats each of VW / M inputs M times. */
typedef CAT(uint, VW) uintV;
static uintV repeat_mask(void)
{
    uint lanes[VW];
#pragma unroll
    for (int i = 0; i < VW; i++)
        lanes[i] = (uint)(i / M);
    return CAT(vload, VW)(0, lanes);
}
#endif

/* The inputs of output channels f .. f + VW - 1 at the pixel whose channels start at `at`:
 * channels f .. with M == 1, else channel (f + i) / M for lane i: VW / M contiguous inputs
 * each repeated M times (one vector load and a shuffle, not VW scalar loads), one input
 * broadcast where VW == M. */
static floatV input_vector(__global const float *x, int at, int f)
{
#if M == 1
    return LOADV(x + at + f);
#elif VW > M && VW % M == 0
    return shuffle(LOAD_INPUTS(x + at + f / M), repeat_mask());
#elif VW == M
    return (floatV)(x[at + f / M]);
#else
    float lanes[VW];
#pragma unroll
    for (int i = 0; i < VW; i++)
        lanes[i] = x[at + (f + i) / M];
    return LOADV(lanes);
#endif
}

__kernel void depthwise_forward(__global const float *restrict x, __global const float *restrict w,
                                __global const float *restrict bias, __global float *restrict y,
                                int batch)
{
    const int P = batch * OH * OW;
    const int p0 = (int)get_global_id(0) * MR, f0 = (int)get_global_id(1) * NR;
    int ih0[MR], iw0[MR], base[MR];
    pixel_block(p0, P, ih0, iw0, base);
    floatV acc[MR][NV];
    zero_block(acc);

#pragma unroll
    for (int kh = 0; kh < KH; kh++) {
#pragma unroll
        for (int kw = 0; kw < KW; kw++) {
            floatV wv[NV];
#pragma unroll
            for (int v = 0; v < NV; v++)
                wv[v] = LOADV(w + (kh * KW + kw) * F + f0 + v * VW);
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int at = tap_at(ih0[r], iw0[r], base[r], kh, kw);
                if (at < 0)
                    continue;
#pragma unroll
                for (int v = 0; v < NV; v++)
                    acc[r][v] = fma(input_vector(x, at, f0 + v * VW), wv[v], acc[r][v]);
            }
        }
    }

#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (p0 + r >= P)
            break;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            const int f = f0 + v * VW, at = (p0 + r) * F + f;
            STOREV(epilogue(acc[r][v], bias, 0, f, at), y + at);
        }
    }
}

#ifdef DEPTHWISE_ROWS
/* The same convolution, each work-item MR consecutive output pixels of one output row (not of
 * the flat pixel index) by NR channels: the MR windows of a row of taps overlap, so each input
 * column they read is loaded once and used by every (pixel, tap) reading it: SPAN loads per
 * row of taps instead of MR * KW, one bounds check per row of taps and per column instead of
 * per tap and pixel. MR is the binder's choice from OW (blocks that cut each row evenly).
 * Launch: dim 0 = row blocks (batch * OH * ceil(OW / MR)), dim 1 = channel blocks. */
#define SPAN ((MR - 1) * SW + (KW - 1) * DW + 1)
#define ROW_BLOCKS ((OW + MR - 1) / MR)

__kernel void depthwise_rows(__global const float *restrict x, __global const float *restrict w,
                             __global const float *restrict bias, __global float *restrict y,
                             int batch)
{
    const int b = (int)get_global_id(0), f0 = (int)get_global_id(1) * NR;
    const int row = b / ROW_BLOCKS, ow0 = (b % ROW_BLOCKS) * MR; /* row: n * OH + oh */
    if (row >= batch * OH)
        return;
    const int n = row / OH, oh = row % OH, iw0 = ow0 * SW - PL;
    floatV acc[MR][NV];
    zero_block(acc);

#pragma unroll
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh * DH;
        if (ih < 0 || ih >= H)
            continue;
        const int row_at = (n * H + ih) * W * C;
        floatV wv[KW][NV];
#pragma unroll
        for (int kw = 0; kw < KW; kw++)
#pragma unroll
            for (int v = 0; v < NV; v++)
                wv[kw][v] = LOADV(w + (kh * KW + kw) * F + f0 + v * VW);
#pragma unroll
        for (int j = 0; j < SPAN; j++) {
            const int iw = iw0 + j;
            if (iw < 0 || iw >= W)
                continue;
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const floatV in = input_vector(x, row_at + iw * C, f0 + v * VW);
#pragma unroll
                for (int r = 0; r < MR; r++) {
                    /* tap kw of pixel r reads column r * SW + kw * DW */
                    const int t = j - r * SW;
                    if (t >= 0 && t % DW == 0 && t / DW < KW)
                        acc[r][v] = fma(in, wv[t / DW][v], acc[r][v]);
                }
            }
        }
    }

    /* the row's last block may hold fewer than MR pixels (an `if` and not a `break`: the
     * compiler does not unroll a loop left early) */
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (ow0 + r < OW) {
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int f = f0 + v * VW, at = (row * OW + ow0 + r) * F + f;
                STOREV(epilogue(acc[r][v], bias, 0, f, at), y + at);
            }
        }
    }
}
#endif
