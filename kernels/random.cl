/* Counter-based random numbers and dropout: the same bits as cnnc/rng.py.
 *
 *   k1 = lowbias32(seed); k2 = lowbias32(k1 ^ step); h = lowbias32(k2 ^ i)
 *   u  = (h >> 8) * 2^-24, in [0, 1) and exact in float32
 * Every element's number depends only on (seed, step, flat index), so masks agree with the NumPy
 * backend bit for bit, in any launch order. Launch: one dimension over the elements. The flat
 * index counts from the start of the whole batch: `base` is the index of this launch's first
 * element there (a data-parallel rank's first example times the elements per example; 0 on one
 * device), so every rank draws the masks that one device would for the same examples.
 */
#include "common.h"

static uint lowbias32(uint x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static float counter_uniform(uint seed, uint step, uint i)
{
    const uint k2 = lowbias32(lowbias32(seed) ^ step);
    return (float)(lowbias32(k2 ^ i) >> 8) * 0x1.0p-24f;
}

/* y = x * keep / (1 - rate) with keep = uniform(seed, step, i) >= rate (dropout_train, and
 * dropout_grad on dy with the same mask); `keep_rate` is 1 - rate rounded to float32 once, as
 * NumPy does, so kept values agree bit for bit too. */
#ifdef DROPOUT
__kernel void dropout(__global const float *restrict x, __global float *restrict y, int n,
                      uint seed, uint step, uint base, float rate, float keep_rate)
{
    FOR_ELEMENTS(i, n) {
        y[i] = counter_uniform(seed, step, base + (uint)i) >= rate ? x[i] / keep_rate : 0.0f;
    }
}
#endif

/* The uniforms themselves, for tests that compare with cnnc.rng.uniform. */
#ifdef UNIFORM
__kernel void uniform(__global float *restrict out, int n, uint seed, uint step)
{
    FOR_ELEMENTS(i, n)
        out[i] = counter_uniform(seed, step, (uint)i);
}
#endif
