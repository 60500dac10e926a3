/* The kernel gradient of a convolution of few input channels (a network's stem: 1 to 4),
 * computed directly along input rows:
 *
 *   dw[kh, kw, c, f] = sum over (n, oh, ow) of
 *       x[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, c] * dy[n, oh, ow, f]
 *
 * A work-item owns TAPS neighbouring taps of one kernel row (kh, kw0.., c) by NR = VW * NV
 * filters and walks a part's output rows (n, oh): it copies the input row its taps read into a
 * private row with the padding as zeros (so the inner loop has no bounds checks), then for
 * each output pixel loads its dy vectors once and adds the pixel's TAPS inputs times them. The
 * implicit GEMM (conv2d.cl: conv2d_grad_kernel) checks every tap's bounds at every pixel and
 * multiplies one to four channels per check; im2col + matmul_tn writes and reads KH * KW * C
 * floats per pixel (bind_grad_rows.py says what was measured).
 *
 * Geometry (-D) as conv2d.cl's (groups == 1): H W C input, OH OW F output, KH KW, SH SW, DH DW,
 *   PT PL. Tiling (-D): MR taps per work-item (TAPS = min(MR, KW); each kernel row cut in
 *   TAP_BLOCKS blocks), VW, NV.
 * Launch: dim 0 = KH * C * TAP_BLOCKS tap blocks, dim 1 = F / NR filter blocks, dim 2 = the
 *   parts the batch's N * OH output rows are cut into: part s writes out + s * (KH*KW*C*F), and
 *   with several parts reduce.cl sums them. A work-group holding one part's work-items (the
 *   binder's, on a CPU) reads that part's dy from the core's cache after its first work-item.
 */
#include "tile.h"

#if TAP_DIRECT
/* -D TAP_DIRECT=1 (C a multiple of VW: more than a stem's channels): TAP_VECTOR's form read
 * straight from x. A kernel row's KW * C taps (kw, c) are KW runs of C consecutive floats of
 * the input row (one run with stride 1 and no dilation), and each vector of VW lies within one
 * input pixel (column ow * SW + kw * DW - PL, kw = t * VW / C), so no private copy is needed
 * (it would cost more than the FMAs at 16 channels): the pixels whose window lies inside the
 * row load the vectors as they are, the few at the edges select zeros for the columns in the
 * padding. A work-item owns TVB of the row's TVA vectors (block tb, so that MR * TVB
 * accumulators fit the registers) by MR filters.
 * Launch: dim 0 = KH * TBLOCKS, dim 1 = F / MR filter blocks, dim 2 = parts. */
#if C % VW
#error "TAP_DIRECT needs C a multiple of VW"
#endif
#define TVA (KW * C / VW)
#define TBLOCKS (TVA / TVB)
#if TVA % TVB
#error "TAP_DIRECT: TVB divides KW * C / VW"
#endif

/* one output pixel's FMAs; CHECKED: columns outside the row read as zeros */
#define TAP_DIRECT_PIXEL(CHECKED)                                                                 \
    {                                                                                             \
        floatV a[TVB];                                                                            \
        _Pragma("unroll") for (int t = 0; t < TVB; t++) {                                         \
            const int v = t0 + t, iw = ow * SW + (v * VW / C) * DW - PL;                      \
            a[t] = (!(CHECKED) || (iw >= 0 && iw < W)) ? LOADV(in_row + iw * C + v * VW % C)      \
                                                       : (floatV)(0.0f);                          \
        }                                                                                         \
        _Pragma("unroll") for (int m = 0; m < MR; m++) {                                          \
            const floatV d = (floatV)(dy_row[ow * F + m]);                                        \
            _Pragma("unroll") for (int t = 0; t < TVB; t++) acc[m][t] = fma(a[t], d, acc[m][t]);  \
        }                                                                                         \
    }

__kernel void conv2d_grad_kernel_rows(__global const float *restrict x,
                                      __global const float *restrict dy,
                                      __global float *restrict out, int batch)
{
    const int kh = (int)get_global_id(0) / TBLOCKS, t0 = (int)get_global_id(0) % TBLOCKS * TVB;
    const int f0 = (int)get_global_id(1) * MR;
    const int part = (int)get_global_id(2), parts = (int)get_global_size(2);
    const int rows = batch * OH;
    const int r_end = part_begin(rows, part + 1, parts);
    /* the output pixels whose KW columns all lie in the row: ow * SW - PL >= 0 and
     * ow * SW - PL + (KW - 1) * DW < W */
    const int reach = W - 1 + PL - (KW - 1) * DW;
    const int lo = min((PL + SW - 1) / SW, OW);
    const int hi = max(lo, min(OW, reach < 0 ? 0 : reach / SW + 1));

    floatV acc[MR][TVB];
#pragma unroll
    for (int m = 0; m < MR; m++)
#pragma unroll
        for (int t = 0; t < TVB; t++)
            acc[m][t] = (floatV)(0.0f);

#if SYNC_ROWS
    for (int chunk = part_begin(rows, part, parts); chunk < r_end; chunk += SYNC_ROWS) {
    const int chunk_end = min(chunk + SYNC_ROWS, r_end);
    for (int row = chunk; row < chunk_end; row++) {
#else
    for (int row = part_begin(rows, part, parts); row < r_end; row++) {
#endif
        const int n = row / OH, oh = row % OH;
        const int ih = oh * SH + kh * DH - PT;
        if (ih < 0 || ih >= H)
            continue;
        __global const float *in_row = x + (n * H + ih) * W * C;
        __global const float *dy_row = dy + row * OW * F + f0;
        int ow = 0;
        for (; ow < lo; ow++)
            TAP_DIRECT_PIXEL(1)
        for (; ow < hi; ow++)
            TAP_DIRECT_PIXEL(0)
        for (; ow < OW; ow++)
            TAP_DIRECT_PIXEL(1)
    }
#if SYNC_ROWS
    barrier(CLK_GLOBAL_MEM_FENCE);
    }
#endif

    __global float *o = out + part * (KH * KW * C * F) + kh * KW * C * F + f0;
#pragma unroll
    for (int m = 0; m < MR; m++) {
#pragma unroll
        for (int t = 0; t < TVB; t++) {
            float lanes[VW];
            STOREV(acc[m][t], lanes);
#pragma unroll
            for (int l = 0; l < VW; l++)
                o[((t0 + t) * VW + l) * F + m] = lanes[l];
        }
    }
}

#elif TAP_VECTOR
/* -D TAP_VECTOR=1 (stride 1, no dilation): the taps in the vectors instead of the filters. A
 * kernel row's KW * C taps (kw, c) read KW * C neighbouring floats of the input row, in dw's
 * order: a work-item owns all of them, in TV vectors of VW, by MR filters, and per output pixel
 * loads the TV vectors from the private row and multiplies them by each of its MR filters'
 * dy (a broadcast): one load per MR FMAs where the filter vectors' form loads one per TAPS, and
 * no window for the compiler to hold in registers beside the accumulators. The lanes past
 * KW * C are wasted (1 of 8 for a 7x7 stem of one channel). Launch: dim 0 = KH, dim 1 = F / MR
 * filter blocks, dim 2 = parts, as below. */
#define TV ((KW * C + VW - 1) / VW)
#define XSPAN ((OW + KW - 1) * C + TV * VW)

__kernel void conv2d_grad_kernel_rows(__global const float *restrict x,
                                      __global const float *restrict dy,
                                      __global float *restrict out, int batch)
{
    const int kh = (int)get_global_id(0), f0 = (int)get_global_id(1) * MR;
    const int part = (int)get_global_id(2), parts = (int)get_global_size(2);
    const int rows = batch * OH;
    const int r_end = part_begin(rows, part + 1, parts);

    floatV acc[MR][TV];
#pragma unroll
    for (int m = 0; m < MR; m++)
#pragma unroll
        for (int t = 0; t < TV; t++)
            acc[m][t] = (floatV)(0.0f);

    float xr[XSPAN];
#if SYNC_ROWS
    for (int chunk = part_begin(rows, part, parts); chunk < r_end; chunk += SYNC_ROWS) {
    const int chunk_end = min(chunk + SYNC_ROWS, r_end);
    for (int row = chunk; row < chunk_end; row++) {
#else
    for (int row = part_begin(rows, part, parts); row < r_end; row++) {
#endif
        const int n = row / OH, oh = row % OH;
        const int ih = oh + kh - PT;
        if (ih < 0 || ih >= H)
            continue;
        __global const float *in_row = x + (n * H + ih) * W * C;
        /* the padding's zeros, then the row's floats as they lie (one copy loop without a
         * branch), then zeros */
        const int lo = min(PL * C, XSPAN), hi = min((W + PL) * C, XSPAN);
        for (int j = 0; j < lo; j++)
            xr[j] = 0.0f;
        for (int j = lo; j < hi; j++)
            xr[j] = in_row[j - PL * C];
        for (int j = hi; j < XSPAN; j++)
            xr[j] = 0.0f;
        __global const float *dy_row = dy + row * OW * F + f0;
        for (int ow = 0; ow < OW; ow++) {
            floatV a[TV];
#pragma unroll
            for (int t = 0; t < TV; t++)
                a[t] = LOADV(xr + ow * C + t * VW);
#pragma unroll
            for (int m = 0; m < MR; m++) {
                const floatV d = (floatV)(dy_row[ow * F + m]);
#pragma unroll
                for (int t = 0; t < TV; t++)
                    acc[m][t] = fma(a[t], d, acc[m][t]);
            }
        }
    }
#if SYNC_ROWS
    barrier(CLK_GLOBAL_MEM_FENCE);
    }
#endif

    __global float *o = out + part * (KH * KW * C * F) + kh * KW * C * F + f0;
#pragma unroll
    for (int m = 0; m < MR; m++) {
#pragma unroll
        for (int t = 0; t < TV; t++) {
            float lanes[VW];
            STOREV(acc[m][t], lanes);
#pragma unroll
            for (int l = 0; l < VW; l++)
                if (t * VW + l < KW * C)
                    o[(t * VW + l) * F + m] = lanes[l];
        }
    }
}

#else

#define TAPS (MR < KW ? MR : KW)
#define TAP_BLOCKS ((KW + TAPS - 1) / TAPS)
/* input columns one output row's TAPS taps read */
#define SPAN ((OW - 1) * SW + (TAPS - 1) * DW + 1)

__kernel void conv2d_grad_kernel_rows(__global const float *restrict x,
                                      __global const float *restrict dy,
                                      __global float *restrict out, int batch)
{
    const int b = (int)get_global_id(0), f0 = (int)get_global_id(1) * NR;
    const int part = (int)get_global_id(2), parts = (int)get_global_size(2);
    const int tb = b % TAP_BLOCKS, c = (b / TAP_BLOCKS) % C, kh = b / (TAP_BLOCKS * C);
    const int kw0 = tb * TAPS;
    const int rows = batch * OH;
    const int r_end = part_begin(rows, part + 1, parts);

    floatV acc[TAPS][NV];
#pragma unroll
    for (int t = 0; t < TAPS; t++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            acc[t][v] = (floatV)(0.0f);

    float xr[SPAN];
#if SYNC_ROWS
    /* The work-group's work-items (one part's) take its rows SYNC_ROWS at a time, all of them
     * one chunk before any the next: the chunk's dy is read from the core's L1 cache by every
     * work-item after the first, instead of each one streaming the whole part. */
    for (int chunk = part_begin(rows, part, parts); chunk < r_end; chunk += SYNC_ROWS) {
    const int chunk_end = min(chunk + SYNC_ROWS, r_end);
    for (int row = chunk; row < chunk_end; row++) {
#else
    for (int row = part_begin(rows, part, parts); row < r_end; row++) {
#endif
        const int n = row / OH, oh = row % OH;
        const int ih = oh * SH + kh * DH - PT;
        if (ih < 0 || ih >= H)
            continue;
        __global const float *in_row = x + (n * H + ih) * W * C + c;
        const int iw0 = kw0 * DW - PL;
        const int lo = clamp(-iw0, 0, SPAN), hi = clamp(W - iw0, lo, SPAN);
        for (int j = 0; j < lo; j++)
            xr[j] = 0.0f;
        for (int j = lo; j < hi; j++)
            xr[j] = in_row[(iw0 + j) * C];
        for (int j = hi; j < SPAN; j++)
            xr[j] = 0.0f;
        __global const float *dy_row = dy + row * OW * F + f0;
        for (int ow = 0; ow < OW; ow++) {
            floatV d[NV];
            load_row(d, dy_row + ow * F);
#pragma unroll
            for (int t = 0; t < TAPS; t++) {
                const floatV a = (floatV)(xr[ow * SW + t * DW]);
#pragma unroll
                for (int v = 0; v < NV; v++)
                    acc[t][v] = fma(a, d[v], acc[t][v]);
            }
        }
    }
#if SYNC_ROWS
    barrier(CLK_GLOBAL_MEM_FENCE);
    }
#endif

    /* the row's last block may hold taps past KW (an `if`, so the loop stays unrolled) */
    __global float *o = out + part * (KH * KW * C * F);
#pragma unroll
    for (int t = 0; t < TAPS; t++) {
        if (kw0 + t < KW) {
#pragma unroll
            for (int v = 0; v < NV; v++)
                STOREV(acc[t][v], o + ((kh * KW + kw0 + t) * C + c) * F + f0 + v * VW);
        }
    }
}
#endif
