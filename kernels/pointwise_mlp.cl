/* A 1x1 convolution and the 1x1 convolution reading it, forward, fused (NHWC activations,
 * (1, 1, C, F) and (1, 1, F, K) kernels; cnnc/ir/pointwise_mlp.py): an inverted bottleneck's MLP
 *
 *   h[p, f] = act1(b1[f] + sum over c < C of x[p, c] * w1[c, f])
 *   y[p, k] = act2(b2[k] + sum over f < F of h[p, f] * w2[f, k] (+ residual[p, k]))
 *
 * h, the hidden map (F = 4C channels in a ConvNeXt block), is never written to global memory:
 * each work-item takes MR pixels (flat (n, oh, ow)), computes their F hidden channels as a
 * GEMM's register blocks of MR pixels by NR = VW * NV channels into an array of its own (MR * F
 * floats, read back from the core's L1 cache), then the projection of that array in register
 * blocks of MR pixels by NR output channels, over all K in turn. Every hidden value is
 * computed once; the pixels' inputs (MR * C floats) stay in the L1 cache across the F / NR
 * expansion blocks.
 *
 * -D: C F K (channels in, hidden, out); MR VW NV (tile.h's block; NR divides F and K);
 *   B1 B2 (0 or 1: that part's bias is read), ACT1 ACT2 (0 or 1: ACTIVATE, common.h's
 *   ACT_<NAME>, after that part; the op allows one activation), HAS_RESIDUAL (the residual is
 *   added before ACT2: RESIDUAL_PARAM, the last argument).
 *   LOCAL_HIDDEN (GPUs): 0: the hidden array is private (CPUs: the stack, in L1); G > 0: it
 *   lives in local memory, one slice per work-item of a G-item work-group (a GPU's private
 *   array of a few KiB would spill to global memory). No two work-items share a slice, so no
 *   barrier is needed.
 * Launch: dim 0 = pixel blocks (rounded up to whole work-groups), dim 1 = 1; `rows` the pixels.
 */
#include "tile.h"

__kernel void pointwise_mlp(__global const float *restrict x, __global const float *restrict w1,
                            __global const float *restrict b1,
                            __global const float *restrict w2,
                            __global const float *restrict b2, __global float *restrict y,
                            int rows RESIDUAL_PARAM)
{
    /* pixel r's hidden channel f at h[r * F + f]: one flat array, so that the activation
     * pass below walks it in one loop */
#if LOCAL_HIDDEN
    __local float hidden[LOCAL_HIDDEN * MR * F];
    __local float *h = hidden + (int)get_local_id(0) * (MR * F);
#else
    float h[MR * F];
#endif
    const int p0 = (int)get_global_id(0) * MR;
    if (p0 >= rows)
        return;
    __global const float *x_rows[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        x_rows[r] = x + min(p0 + r, rows - 1) * C; /* past the end: repeats, never stored */

    for (int f0 = 0; f0 < F; f0 += NR) {
        floatV acc[MR][NV];
        zero_block(acc);
        gemm_steps(acc, x_rows, w1 + f0, C, F);
#pragma unroll
        for (int r = 0; r < MR; r++) {
#pragma unroll
            for (int v = 0; v < NV; v++) {
                floatV value = acc[r][v];
#if B1
                value += LOADV(b1 + f0 + v * VW);
#endif
                STOREV(value, h + r * F + f0 + v * VW);
            }
        }
    }
#if ACT1
    /* The activation in a pass of its own over the array, with no accumulator live: in the
     * block's epilogue GELU's temporaries spilled the accumulators (see the note above). */
    for (int i = 0; i < MR * F; i += VW)
        STOREV(ACTIVATE(LOADV(h + i)), h + i);
#endif

    for (int k0 = 0; k0 < K; k0 += NR) {
        floatV out[MR][NV];
        zero_block(out);
        for (int f = 0; f < F; f++) {
            floatV b[NV];
            float a[MR];
            load_row(b, w2 + f * K + k0);
#pragma unroll
            for (int r = 0; r < MR; r++)
                a[r] = h[r * F + f];
            rank1_update(out, a, b);
        }
#pragma unroll
        for (int r = 0; r < MR; r++) {
            /* a guard, not an early exit: the channel loop goes on for the rows before */
            if (p0 + r < rows) {
#pragma unroll
                for (int v = 0; v < NV; v++) {
                    const int at = (p0 + r) * K + k0 + v * VW;
                    floatV value = out[r][v];
#if B2
                    value += LOADV(b2 + k0 + v * VW);
#endif
#if HAS_RESIDUAL
                    value += LOADV(residual + at);
#endif
#if ACT2
                    value = ACTIVATE(value);
#endif
                    STOREV(value, y + at);
                }
            }
        }
    }
}
