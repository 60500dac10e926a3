/* The device's multiply-add rate, measured (cnnc/backends/opencl/peak.py): the yardstick
 * `cnnc bench` holds every kernel's GFLOP/s against.
 *
 * Each work-item runs CHAINS independent chains of fused multiply-adds on VW-wide vectors, so
 * that neither the latency of one FMA nor a memory access limits the rate; the result is
 * written so the compiler cannot drop the work.
 *
 * Build options: VW (1, 2, 4, 8 or 16), FMA_PEAK. */
#include "common.h"

#ifdef FMA_PEAK
#define CHAINS 8
__kernel void fma_peak(__global float *restrict out, int iterations)
{
    const floatV m = (floatV)(0.9999999f), c = (floatV)(1e-7f);
    floatV a[CHAINS];
    for (int k = 0; k < CHAINS; k++)
        a[k] = (floatV)((float)get_global_id(0) * 1e-9f + (float)k);
    for (int i = 0; i < iterations; i++) {
#pragma unroll
        for (int k = 0; k < CHAINS; k++)
            a[k] = fma(a[k], m, c);
    }
    floatV sum = a[0];
    for (int k = 1; k < CHAINS; k++)
        sum += a[k];
#if VW == 1
    out[get_global_id(0)] = sum;
#else
    float s = 0.0f;
    for (int v = 0; v < VW; v++)
        s += sum[v];
    out[get_global_id(0)] = s;
#endif
}
#endif
