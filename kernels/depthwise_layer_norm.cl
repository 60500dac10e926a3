/* A depthwise convolution and the layer normalisation over the channels reading it, forward
 * (cnnc/ir/depthwise_layer_norm.py; NHWC activations, (KH, KW, C, 1) kernels):
 *
 *   d[n, oh, ow, c] = act(bias[c] + sum over (kh, kw) of
 *                         x[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, c] * w[kh, kw, c])
 *   y[n, oh, ow, c] = (d[.., c] - mean_c d) / sqrt(var_c d + eps) * gamma[c] + beta[c]
 *
 * depthwise.cl's row kernel (depthwise_rows) with every channel in one work-item: MR
 * neighbouring output pixels of one output row by all C channels (NV = C / VW vectors), each
 * input column a row of taps reads loaded once for every window reading it. A pixel's channels
 * are then all in its accumulators, so its statistics are taken there (two passes, the mean
 * then the squared deviations, as layer_norm.cl's) and only the normalised map is stored: the
 * depthwise map d is never written.
 *
 * Geometry (-D): H W C input, OH OW output, KH KW kernel, SH SW strides, DH DW dilation, PT PL
 *   padding before (top, left). The batch comes as the argument `batch`, epsilon as `eps`.
 * Block (-D): MR pixels, VW vector width (dividing C).
 * Epilogue (-D): HAS_BIAS, ACT_<NAME> (common.h) on d; HAS_GAMMA, HAS_BETA (0 or 1).
 * Launch: dim 0 = row blocks (batch * OH * ceil(OW / MR), rounded up to the work-group).
 */
#include "common.h"

#define NV (C / VW)
#include "tile.h" /* zero_block */

#define SPAN ((MR - 1) * SW + (KW - 1) * DW + 1)
#define ROW_BLOCKS ((OW + MR - 1) / MR)

#include "lanes.h" /* lanes_sum */

__kernel void depthwise_layer_norm(__global const float *restrict x,
                                   __global const float *restrict w,
                                   __global const float *restrict bias,
                                   __global const float *restrict gamma,
                                   __global const float *restrict beta,
                                   __global float *restrict y, int batch, float eps)
{
    const int b = (int)get_global_id(0);
    const int row = b / ROW_BLOCKS, ow0 = (b % ROW_BLOCKS) * MR; /* row: n * OH + oh */
    if (row >= batch * OH)
        return;
    const int n = row / OH, oh = row % OH, iw0 = ow0 * SW - PL;
    floatV acc[MR][NV];
    zero_block(acc);

    /* one vector of channels at a time, each a depthwise_rows block (MR accumulators, a row
     * of taps' KW weight vectors): its accumulators are done before the next vector's start,
     * so few are live at once where MR * NV would not fit the registers */
#pragma unroll
    for (int v = 0; v < NV; v++) {
#pragma unroll
        for (int kh = 0; kh < KH; kh++) {
            const int ih = oh * SH - PT + kh * DH;
            if (ih < 0 || ih >= H)
                continue;
            const int row_at = (n * H + ih) * W * C + v * VW;
            floatV wv[KW];
#pragma unroll
            for (int kw = 0; kw < KW; kw++)
                wv[kw] = LOADV(w + (kh * KW + kw) * C + v * VW);
#pragma unroll
            for (int j = 0; j < SPAN; j++) {
                const int iw = iw0 + j;
                if (iw < 0 || iw >= W)
                    continue;
                const floatV in = LOADV(x + row_at + iw * C);
#pragma unroll
                for (int r = 0; r < MR; r++) {
                    /* tap kw of pixel r reads column r * SW + kw * DW */
                    const int t = j - r * SW;
                    if (t >= 0 && t % DW == 0 && t / DW < KW)
                        acc[r][v] = fma(in, wv[t / DW], acc[r][v]);
                }
            }
        }
    }

    /* the row's last block may hold fewer than MR pixels */
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (ow0 + r < OW) {
            const int at = (row * OW + ow0 + r) * C;
            floatV sum = (floatV)(0.0f);
#pragma unroll
            for (int v = 0; v < NV; v++) {
                acc[r][v] = epilogue(acc[r][v], bias, 0, v * VW, at + v * VW);
                sum += acc[r][v];
            }
            const float mean = lanes_sum(sum) / (float)C;
            floatV dev = (floatV)(0.0f);
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const floatV d = acc[r][v] - mean;
                dev += d * d;
            }
            const float inv = 1.0f / sqrt(lanes_sum(dev) / (float)C + eps);
#pragma unroll
            for (int v = 0; v < NV; v++) {
                floatV out = (acc[r][v] - mean) * inv;
#if HAS_GAMMA
                out *= LOADV(gamma + v * VW);
#endif
#if HAS_BETA
                out += LOADV(beta + v * VW);
#endif
                STOREV(out, y + at + v * VW);
            }
        }
    }
}
