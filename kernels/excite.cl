/* Squeeze-and-excitation's product of a map by a per-channel gate, and the map's gradient
 * (cnnc/ir/excite_grad.py), over NHWC maps of HW positions and C channels (-D HW, C), each
 * position's channels VW at a time (-D VW divides C). Bound by bind_merges.py (the product: a
 * `multiply` of a map and an (N, 1, 1, C) or (N, C) gate, and a multiply_grad of that form)
 * and bind_gradients.py (excite_grad). One work-item per position (n, p): no division per
 * vector, and the example's gate stays in cache across its positions, where merge.cl's general
 * broadcasting kernels step element by element. Launch: one dimension, batch * HW rounded up.
 */
#include "common.h"

/* y[n, p, c] = ACTIVATE(x[n, p, c] * gate[n, c]) (-D ACT_<NAME>: a fused merge + activation). */
#ifdef CHANNEL_GATE
__kernel void channel_gate(__global const float *restrict x, __global const float *restrict gate,
                           __global float *restrict y, int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * HW)
        return;
    const int n = i / HW;
    for (int c = 0; c < C; c += VW)
        STOREV(ACTIVATE(LOADV(x + i * C + c) * LOADV(gate + n * C + c)), y + i * C + c);
}
#endif

/* dx[n, p, c] = dm[n, p, c] * gate[n, c] + dpool[n, c] / HW: the map's gradient through the
 * product and the pooling, in one pass. */
#ifdef EXCITE_GRAD
__kernel void excite_grad(__global const float *restrict dm, __global const float *restrict gate,
                          __global const float *restrict dpool, __global float *restrict dx,
                          int batch)
{
    const int i = get_global_id(0);
    if (i >= batch * HW)
        return;
    const int n = i / HW;
    for (int c = 0; c < C; c += VW)
        STOREV(LOADV(dm + i * C + c) * LOADV(gate + n * C + c)
               + LOADV(dpool + n * C + c) / (float)HW, dx + i * C + c);
}
#endif
