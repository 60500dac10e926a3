/* pointwise_avgpool.cl's computation on a gathered input (cnnc/ir/pointwise_avgpool.py with a
 * gathered convolution, cnnc/ir/gathered.py): y[n, f] = sum over the HW pixels p of
 * act(bias[f] + sum_k x[n, p, k] * w[k, f]) / HW, where x's channels are runs over SOURCES
 * tensors (gather.h) that no launch copies together: ShuffleNetV2's head, the last shuffle's
 * 1x1 convolution and the global pooling, reads the units' outputs where they lie and writes
 * only the pooled vector. Each work-item owns one image's block of NR = VW * NV filters, its
 * pixels MR at a time as a GEMM register block, summed after the epilogue in NV running sums
 * (one work-item per output: no atomics, no second launch).
 *
 * -D: HW pixels per image, F filters; MR VW NV (tiling); HAS_BIAS, ACT_<NAME>; gather.h's
 * SOURCES SEGMENTS SEG<i>_*.
 * Launch: dim 0 = images (the batch, rounded up to whole work-groups), dim 1 = filter blocks
 * (F / NR).
 */
#include "tile.h"
#include "gather.h"

__kernel void pointwise_avgpool_gathered(__global const float *restrict x,
                                         __global const float *restrict w,
                                         __global const float *restrict bias,
                                         __global float *restrict y, int batch GATHER_PARAM)
{
    const int n = (int)get_global_id(0), f0 = (int)get_global_id(1) * NR;
    if (n >= batch)
        return;
    __global const float *const sources[SOURCES] = {GATHER_SOURCES};
    floatV sum[NV];
#pragma unroll
    for (int v = 0; v < NV; v++)
        sum[v] = (floatV)(0.0f);
    for (int p0 = 0; p0 < HW; p0 += MR) {
        floatV acc[MR][NV];
        zero_block(acc);
        int pix[MR];
#pragma unroll
        for (int r = 0; r < MR; r++)
            pix[r] = n * HW + min(p0 + r, HW - 1); /* past the end: repeats, not added */
        gather_runs(acc, sources, pix, w + f0);
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
