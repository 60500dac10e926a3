/* The moving average of the weights (cnnc/ir/ema.py, Keras' use_ema): after the optimizer step,
 * shadow = m * shadow + c * param with the per-step scalars (m, c = 1 - m), m 0 at step 0.
 * Launch: one dimension, ceil(n / ELEMS) work-items (common.h: FOR_ELEMENTS).
 */
#include "common.h"

#ifdef EMA_UPDATE
__kernel void ema_update(__global float *restrict shadow, __global const float *restrict param,
                         int n, __global const float *restrict s, int at)
{
    const float m = s[at], c = s[at + 1];  /* the runtime's per-step table (updates.cl) */
    FOR_ELEMENTS(i, n)
        shadow[i] = m * shadow[i] + c * param[i];
}
#endif
