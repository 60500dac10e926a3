/* A 1x1 convolution and the global average pooling reading it (cnnc/ir/pointwise_avgpool.py):
 * y[n, f] = sum over the HW pixels p of act(bias[f] + sum_c x[n, p, c] * w[c, f]) / HW, the
 * convolution's map never written. Each work-item owns one image's block of NR = VW * NV
 * filters: it computes its pixels MR at a time as a GEMM's register block (tile.h), applies the
 * epilogue (bias, activation) to each and adds the rows up in NV running sums, so every sum is
 * one work-item's and no two work-items write the same output (no atomics, no second launch).
 *
 * -D: HW pixels per image, C input channels, F filters; MR VW NV (tiling); HAS_BIAS, ACT_<NAME>.
 * Launch: dim 0 = images (the batch, rounded up to whole work-groups), dim 1 = filter blocks
 * (F / NR).
 */
#include "tile.h"

__kernel void pointwise_avgpool(__global const float *restrict x,
                                __global const float *restrict w,
                                __global const float *restrict bias, __global float *restrict y,
                                int batch)
{
    const int n = (int)get_global_id(0), f0 = (int)get_global_id(1) * NR;
    if (n >= batch)
        return;
    __global const float *img = x + n * (HW * C);
    floatV sum[NV];
#pragma unroll
    for (int v = 0; v < NV; v++)
        sum[v] = (floatV)(0.0f);
    for (int p0 = 0; p0 < HW; p0 += MR) {
        floatV acc[MR][NV];
        zero_block(acc);
        __global const float *rows[MR];
#pragma unroll
        for (int r = 0; r < MR; r++)
            rows[r] = img + min(p0 + r, HW - 1) * C; /* past the end: repeats, not added */
        gemm_steps(acc, rows, w + f0, C, F);
#pragma unroll
        for (int r = 0; r < MR; r++) {
            if (p0 + r < HW) {
#pragma unroll
                for (int v = 0; v < NV; v++)
                    sum[v] += epilogue(acc[r][v], bias, 0, f0 + v * VW, 0);
            }
        }
    }
#pragma unroll
    for (int v = 0; v < NV; v++)
        STOREV(sum[v] / (float)HW, y + n * F + f0 + v * VW);
}
