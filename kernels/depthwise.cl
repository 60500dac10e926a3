/* Depthwise 2-D convolution, forward, direct (NHWC activations, (KH, KW, C, M) kernels):
 *
 *   y[n, oh, ow, c*M + m] = act(bias[c*M + m] + sum over (kh, kw) of
 *                               x[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, c] * w[kh, kw, c, m])
 *
 * The kernel's flat index is (kh*KW + kw) * F + f for output channel f = c*M + m, so a tap's
 * weights for consecutive output channels are contiguous, like the output's channels: each
 * work-item computes MR consecutive output pixels of one output row (n, oh, ow0 .. ow0 + MR - 1)
 * by NR = VW * NV consecutive output channels. Neighbouring outputs of a row share input
 * columns: per kernel row the work-item reads each of the (MR - 1) * SW + (KW - 1) * DW + 1
 * input columns its MR pixels touch once and adds it into every accumulator whose tap reads it
 * (KH * (MR + KW - 1) vector loads instead of KH * KW * MR at stride 1; the tap of each column
 * is known when the unrolled loops are compiled). Kernel rows in the padding are skipped, and
 * columns in it read as zeros. No GEMM: each output reads KH * KW inputs, not C.
 *
 * With a depth multiplier M > 1 the VW lanes of output channels f .. f + VW - 1 read input
 * channels f / M ..: one vector of VW / M channels spread over the lanes by a shuffle where M
 * divides VW, one broadcast channel where VW divides M, one channel per lane otherwise.
 *
 * Geometry (-D): H W C input, M depth multiplier, OH OW output, KH KW kernel, SH SW strides,
 *   DH DW dilation, PT PL padding before (top, left). The batch comes as the argument `batch`.
 * Block (-D): MR pixels of a row, VW vector width, NV vectors per work-item (VW * NV divides
 *   C * M).
 * Epilogue (-D): HAS_BIAS, ACT_<NAME> (common.h).
 * Launch: dim 0 = pixel blocks, batch * OH * ceil(OW / MR) of them (the large count; the grid
 *   may be rounded up to whole work-groups: items past the end return), dim 1 = channel blocks.
 */
#include "common.h"

#define F (C * M)
#define NR (VW * NV)
#define OWB ((OW + MR - 1) / MR)              /* pixel blocks per output row */
#define SPAN ((MR - 1) * SW + (KW - 1) * DW + 1) /* input columns a block's row reads */

#if M > 1 && VW > 1 && VW % M == 0 && VW / M > 1
#if VW / M == 2 /* a literal: it is pasted into vloadIVW */
#define IVW 2
#elif VW / M == 4
#define IVW 4
#else
#define IVW 8
#endif
#if VW == 4
#define LANES (uint4)(0, 1, 2, 3)
#elif VW == 8
#define LANES (uint8)(0, 1, 2, 3, 4, 5, 6, 7)
#else
#define LANES (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#endif
#endif

/* The inputs of output channels f .. f + VW - 1 at the pixel whose channels start at `at`:
 * channels f .. with M == 1, else channel (f + i) / M for lane i (f is a multiple of VW). */
static floatV input_vector(__global const float *x, int at, int f)
{
#if M == 1
    return LOADV(x + at + f);
#elif VW == 1 || M % VW == 0
    return (floatV)(x[at + f / M]);
#elif defined(IVW)
    return shuffle(CAT(vload, IVW)(0, x + at + f / M), LANES / M);
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
    const int block = (int)get_global_id(0);
    if (block >= batch * OH * OWB)
        return;
    const int f0 = (int)get_global_id(1) * NR;
    const int n = block / (OH * OWB), rem = block % (OH * OWB);
    const int oh = rem / OWB, ow0 = (rem % OWB) * MR;
    const int iw0 = ow0 * SW - PL;

    floatV acc[MR][NV];
#pragma unroll
    for (int r = 0; r < MR; r++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            acc[r][v] = (floatV)(0.0f);

#pragma unroll
    for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + kh * DH;
        if (ih < 0 || ih >= H)
            continue;
        __global const float *row = x + (n * H + ih) * W * C;
        floatV wv[KW][NV];
#pragma unroll
        for (int kw = 0; kw < KW; kw++)
#pragma unroll
            for (int v = 0; v < NV; v++)
                wv[kw][v] = LOADV(w + (kh * KW + kw) * F + f0 + v * VW);
#pragma unroll
        for (int j = 0; j < SPAN; j++) {
            const int iw = iw0 + j;
            const bool inside = iw >= 0 && iw < W;
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const floatV xv = inside ? input_vector(row, iw * C, f0 + v * VW)
                                         : (floatV)(0.0f);
                /* Column j is tap kw of pixel r where r * SW + kw * DW == j. */
#pragma unroll
                for (int kw = 0; kw < KW; kw++) {
#pragma unroll
                    for (int r = 0; r < MR; r++) {
                        if (r * SW + kw * DW == j)
                            acc[r][v] = fma(xv, wv[kw][v], acc[r][v]);
                    }
                }
            }
        }
    }

    const int p0 = (n * OH + oh) * OW + ow0;
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (ow0 + r < OW) { /* no break: a loop with one is not unrolled */
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int f = f0 + v * VW, at = (p0 + r) * F + f;
                STOREV(epilogue(acc[r][v], bias, 0, f, at), y + at);
            }
        }
    }
}
