/* Depthwise 2-D convolution, gradients, direct (NHWC activations, (KH, KW, C, M) kernels; the
 * forward is depthwise.cl's, whose notation this follows: output channel f = c*M + m, flat
 * kernel index (kh*KW + kw) * F + f).
 *
 *   dx[n, ih, iw, c]    = sum over (kh, kw, m) with ih = oh*SH + kh*DH - PT, iw = ow*SW + kw*DW - PL
 *                         of dy[n, oh, ow, c*M + m] * w[kh, kw, c, m]
 *   dw[kh, kw, c, m]    = sum over (n, oh, ow) of x[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, c]
 *                         * dy[n, oh, ow, c*M + m]
 *
 * depthwise_grad_input gathers: each work-item computes MR consecutive input pixels (flat
 * (n, ih, iw)) by NR = VW * NV consecutive input channels, summing the dy elements whose
 * windows read them (no atomics, no scatter); a tap that no output pixel reaches through the
 * stride or the padding is skipped per pixel. Each tap's weight vectors are loaded once for the
 * MR pixels. Launch: dim 0 = pixel blocks, dim 1 = channel blocks (of C).
 *
 * depthwise_grad_kernel sums over a chunk of the (n, oh) output rows: each work-item holds MR
 * taps (flat kh*KW + kw, from tap block dim 0) by NR output channels (dim 1) in registers and
 * reads each dy vector of its chunk once for its MR taps; chunk k (dim 2, of get_global_size(2))
 * writes its partial sums to out + k * KH*KW*F, which reduce.cl's col_sum_finish adds up in
 * order when there is more than one chunk. Taps past the last of a block are not stored.
 *
 * Geometry (-D): H W C input, M depth multiplier, OH OW output, KH KW kernel, SH SW strides,
 *   DH DW dilation, PT PL padding before (top, left). Block (-D): MR, VW, NV (VW * NV divides C
 *   for the input gradient, C * M for the kernel gradient). The batch is the argument `batch`.
 */
#include "common.h"
#include "tile.h" /* zero_block */

#define F (C * M)
#define NR (VW * NV)
#define TAPS (KH * KW)

/* Lanes p[0], p[M], ..., p[(VW-1)*M]: VW consecutive channels c of an (…, C, M) row at one m. */
static floatV strided_vector(__global const float *p)
{
#if M == 1
    return LOADV(p);
#else
    float lanes[VW];
#pragma unroll
    for (int i = 0; i < VW; i++)
        lanes[i] = p[i * M];
    return LOADV(lanes);
#endif
}

/* The inputs of output channels f .. f + VW - 1 at the pixel whose channels start at `at`
 * (channel (f + i) / M for lane i), as in depthwise.cl. */
static floatV input_vector(__global const float *x, int at, int f)
{
#if M == 1
    return LOADV(x + at + f);
#else
    float lanes[VW];
#pragma unroll
    for (int i = 0; i < VW; i++)
        lanes[i] = x[at + (f + i) / M];
    return LOADV(lanes);
#endif
}

#ifdef DEPTHWISE_GRAD_INPUT
__kernel void depthwise_grad_input(__global const float *restrict dy,
                                   __global const float *restrict w, __global float *restrict dx,
                                   int batch)
{
    const int P = batch * H * W;
    const int p0 = (int)get_global_id(0) * MR, c0 = (int)get_global_id(1) * NR;
    /* th, tw: the pixel's position in the padded input, which tap (kh, kw) reaches from
     * output row (th - kh*DH) / SH where that divides; base: the image's first output row. */
    int th[MR], tw[MR], base[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        /* A block past the last pixel recomputes the last one and does not store it. */
        const int p = min(p0 + r, P - 1);
        const int rem = p % (H * W);
        th[r] = rem / W + PT;
        tw[r] = rem % W + PL;
        base[r] = (p / (H * W)) * OH;
    }
    floatV acc[MR][NV];
    zero_block(acc);

#pragma unroll
    for (int kh = 0; kh < KH; kh++) {
#pragma unroll
        for (int kw = 0; kw < KW; kw++) {
#pragma unroll
            for (int m = 0; m < M; m++) {
                floatV wv[NV];
#pragma unroll
                for (int v = 0; v < NV; v++)
                    wv[v] = strided_vector(w + (kh * KW + kw) * F + (c0 + v * VW) * M + m);
#pragma unroll
                for (int r = 0; r < MR; r++) {
                    const int t = th[r] - kh * DH, u = tw[r] - kw * DW;
                    if (t < 0 || u < 0 || t % SH != 0 || u % SW != 0)
                        continue;
                    const int oh = t / SH, ow = u / SW;
                    if (oh >= OH || ow >= OW)
                        continue;
                    const int at = ((base[r] + oh) * OW + ow) * F + m;
#pragma unroll
                    for (int v = 0; v < NV; v++)
                        acc[r][v] = fma(strided_vector(dy + at + (c0 + v * VW) * M), wv[v],
                                        acc[r][v]);
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (p0 + r >= P)
            break;
#pragma unroll
        for (int v = 0; v < NV; v++)
            STOREV(acc[r][v], dx + (p0 + r) * C + c0 + v * VW);
    }
}
#endif

#ifdef DEPTHWISE_GRAD_KERNEL
__kernel void depthwise_grad_kernel(__global const float *restrict x,
                                    __global const float *restrict dy,
                                    __global float *restrict out, int batch)
{
    const int t0 = (int)get_global_id(0) * MR, f0 = (int)get_global_id(1) * NR;
    const int k = (int)get_global_id(2), chunks = (int)get_global_size(2);
    const int rows = batch * OH;
    const int begin = part_begin(rows, k, chunks), end = part_begin(rows, k + 1, chunks);
    /* Each tap's offset from the output pixel's window corner, and whether it is one. */
    int dh[MR], dw[MR];
    bool tap[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int t = min(t0 + r, TAPS - 1);
        tap[r] = t0 + r < TAPS;
        dh[r] = (t / KW) * DH - PT;
        dw[r] = (t % KW) * DW - PL;
    }
    floatV acc[MR][NV];
    zero_block(acc);

    for (int row = begin; row < end; row++) {
        const int n = row / OH, oh = row % OH;
        /* The input row each tap reads at this output row (its first pixel), or -1. */
        int at_row[MR];
#pragma unroll
        for (int r = 0; r < MR; r++) {
            const int ih = oh * SH + dh[r];
            at_row[r] = tap[r] && ih >= 0 && ih < H ? (n * H + ih) * W : -1;
        }
        for (int ow = 0; ow < OW; ow++) {
            floatV g[NV];
#pragma unroll
            for (int v = 0; v < NV; v++)
                g[v] = LOADV(dy + (row * OW + ow) * F + f0 + v * VW);
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int iw = ow * SW + dw[r];
                if (at_row[r] < 0 || iw < 0 || iw >= W)
                    continue;
                const int at = (at_row[r] + iw) * C;
#pragma unroll
                for (int v = 0; v < NV; v++)
                    acc[r][v] = fma(input_vector(x, at, f0 + v * VW), g[v], acc[r][v]);
            }
        }
    }

    __global float *part = out + k * (TAPS * F);
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (!tap[r])
            break;
#pragma unroll
        for (int v = 0; v < NV; v++)
            STOREV(acc[r][v], part + (t0 + r) * F + f0 + v * VW);
    }
}
#endif
