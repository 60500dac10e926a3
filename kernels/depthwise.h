/* What the depthwise forward kernels (depthwise.cl, depthwise_pointwise.cl) share: a block of
 * MR consecutive output pixels (flat (n, oh, ow)) and where each tap of each pixel reads.
 * Needs the geometry -D options: H W C input, OH OW output, SH SW strides, DH DW dilation,
 * PT PL padding before, and MR. */
#ifndef CNNC_DEPTHWISE_H
#define CNNC_DEPTHWISE_H

/* The window origins (top row, left column, may be in the padding) and the image's first row of
 * the MR pixels from p0 on, of P in all. A block past the last pixel recomputes the last one and
 * does not store it. */
static void pixel_block(int p0, int P, int ih0[MR], int iw0[MR], int base[MR])
{
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int p = min(p0 + r, P - 1);
        const int rem = p % (OH * OW);
        ih0[r] = (rem / OW) * SH - PT;
        iw0[r] = (rem % OW) * SW - PL;
        base[r] = (p / (OH * OW)) * H;
    }
}

/* Where the input channels of tap (kh, kw) of a pixel with window origin (ih0, iw0) in the image
 * starting at row `base` begin; -1 for a tap in the padding, which the caller skips. */
static int tap_at(int ih0, int iw0, int base, int kh, int kw)
{
    const int ih = ih0 + kh * DH, iw = iw0 + kw * DW;
    if (ih < 0 || ih >= H || iw < 0 || iw >= W)
        return -1;
    return ((base + ih) * W + iw) * C;
}

#endif
