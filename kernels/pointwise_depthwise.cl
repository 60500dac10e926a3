/* A 1x1 convolution (an MBConv block's expansion) and the depthwise convolution reading it,
 * forward, fused (NHWC activations, (1, 1, CI, C) pointwise and (KH, KW, C, 1) depthwise
 * kernels; cnnc/ir/pointwise_depthwise.py):
 *
 *   e[n, ih, iw, c] = act_pw(pb[c] + sum over ci < CI of x[n, ih, iw, ci] * pw[ci, c])
 *   y[n, oh, ow, c] = act_dw(db[c] + sum over (kh, kw) of
 *                            e[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, c] * dw[kh, kw, c])
 *
 * e, the expanded map (the block's widest), is never written. Each work-item holds OR output
 * rows of one image, their whole width, by VW channels: it first computes the ER rows by EW
 * columns of e their windows read into a private array (zero in the depthwise padding, each
 * value once: no recompute within a work-item; rows shared with the next row block, (KH - 1) *
 * DH + 1 - SH of them, are computed by both), then the depthwise convolution of that array.
 * The expansion's inputs are scalars broadcast against a vector of VW 1x1 weights, CB columns at
 * a time (CB independent accumulators); the depthwise block MR output pixels of a row.
 *
 * Geometry (-D): H W CI input, C expanded channels, OH OW output, KH KW kernel, SH SW strides,
 *   DH DW dilation, PT PL padding before (top, left). The batch comes as the argument `batch`.
 * Block (-D): OR output rows, VW vector width (divides C), CB expansion columns, MR depthwise
 *   pixels.
 * Epilogues (-D): PW_BIAS, DW_BIAS (0 or 1: the bias arguments are read), PW_ACT, DW_ACT (0 or
 *   1: ACTIVATE, common.h's ACT_<NAME>, after that part; the op allows one activation).
 * Launch: dim 0 = channel blocks (C / VW), dim 1 = row blocks (batch * ceil(OH / OR)): pocl
 * runs dim 0 innermost, so the channel blocks reading the same input rows run one after the
 * other (efficientnet_mini's b2 pair at batch 256 ran 1.04x as fast as with the dims the other
 * way round, 2-core Intel Xeon AVX-512).
 */
#include "common.h"

#define ER ((OR - 1) * SH + (KH - 1) * DH + 1) /* rows of e a row block reads */
#define EW ((OW - 1) * SW + (KW - 1) * DW + 1) /* its columns, with the padding's */
/* the input columns e's windows read: those left of EW - PL (a strided 'valid' layer's last
 * columns may be read by no window) */
#define EC min(W, EW - PL)
#define ROW_BLOCKS ((OH + OR - 1) / OR)

static floatV pointwise_epilogue(floatV v)
{
#if PW_ACT
    v = ACTIVATE(v);
#endif
    return v;
}

static floatV depthwise_epilogue(floatV v)
{
#if DW_ACT
    v = ACTIVATE(v);
#endif
    return v;
}

__kernel void pointwise_depthwise(__global const float *restrict x,
                                  __global const float *restrict pw,
                                  __global const float *restrict pb,
                                  __global const float *restrict dw,
                                  __global const float *restrict db, __global float *restrict y,
                                  int batch)
{
    const int b = (int)get_global_id(1), c0 = (int)get_global_id(0) * VW;
    const int n = b / ROW_BLOCKS, oh0 = (b % ROW_BLOCKS) * OR;
    if (n >= batch)
        return;
    floatV e[ER][EW];
#if PW_BIAS
    const floatV pbias = LOADV(pb + c0);
#else
    const floatV pbias = (floatV)(0.0f);
#endif

    /* the expansion: row i of e is input row oh0 * SH - PT + i, column j input column j - PL */
    for (int i = 0; i < ER; i++) {
        const int ih = oh0 * SH - PT + i;
        if (ih < 0 || ih >= H) {
            for (int j = 0; j < EW; j++)
                e[i][j] = (floatV)(0.0f);
            continue;
        }
        for (int j = 0; j < PL; j++)
            e[i][j] = (floatV)(0.0f);
        for (int j = PL + EC; j < EW; j++)
            e[i][j] = (floatV)(0.0f);
        const int row_at = (n * H + ih) * W * CI;
        for (int j0 = 0; j0 < EC; j0 += CB) {
            /* a block past the row's end recomputes its last column (the same value stored
             * twice): no branch in the unrolled loops. A pointer a column, not an index: pocl's
             * LLVM turned at + ci into at | ci and then sign-extended every index (four
             * instructions an FMA); from pointers each FMA takes its input at a fixed offset. */
            const __global float *at[CB];
            floatV acc[CB];
#pragma unroll
            for (int r = 0; r < CB; r++) {
                at[r] = x + row_at + min(j0 + r, EC - 1) * CI;
                acc[r] = pbias;
            }
#pragma unroll
            for (int ci = 0; ci < CI; ci++) {
                const floatV wv = LOADV(pw + ci * C + c0);
#pragma unroll
                for (int r = 0; r < CB; r++)
                    acc[r] = fma((floatV)(at[r][ci]), wv, acc[r]);
            }
#pragma unroll
            for (int r = 0; r < CB; r++)
                e[i][PL + min(j0 + r, EC - 1)] = pointwise_epilogue(acc[r]);
        }
    }

    /* the depthwise convolution of e: output row oh0 + r reads e's rows r * SH + kh * DH */
#if DW_BIAS
    const floatV dbias = LOADV(db + c0);
#else
    const floatV dbias = (floatV)(0.0f);
#endif
    for (int r = 0; r < OR; r++) {
        const int oh = oh0 + r;
        if (oh >= OH)
            break;
        for (int ow0 = 0; ow0 < OW; ow0 += MR) {
            int col[MR];
            floatV acc[MR];
#pragma unroll
            for (int m = 0; m < MR; m++) {
                col[m] = min(ow0 + m, OW - 1) * SW;
                acc[m] = dbias;
            }
#pragma unroll
            for (int kh = 0; kh < KH; kh++) {
#pragma unroll
                for (int kw = 0; kw < KW; kw++) {
                    const floatV wv = LOADV(dw + (kh * KW + kw) * C + c0);
#pragma unroll
                    for (int m = 0; m < MR; m++)
                        acc[m] = fma(e[r * SH + kh * DH][col[m] + kw * DW], wv, acc[m]);
                }
            }
            const int at = ((n * OH + oh) * OW + ow0) * C + c0;
#pragma unroll
            for (int m = 0; m < MR; m++) {
                if (ow0 + m < OW)
                    STOREV(depthwise_epilogue(acc[m]), y + at + m * C);
            }
        }
    }
}
