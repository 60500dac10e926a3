/* ShuffleNet's channel shuffle over the last axis (cnnc/ir/channel_shuffle.py), as a gather:
 * output channel j * groups + g of each row is input channel g * (cols / groups) + j. Its
 * gradient is the same kernel with cols / groups groups.
 * Launch: one work-item per row (rounded up; the kernel checks its bound), walking the row's
 * outputs in order with two nested loops: no integer division per element, which on a CPU
 * driver cost more than moving the floats (pocl, Zen 4: 13 ns an element with four divisions).
 */
#include "common.h"

#ifdef CHANNEL_SHUFFLE
__kernel void channel_shuffle(__global const float *restrict x, __global float *restrict y,
                              int rows, int cols, int groups)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    const int per_group = cols / groups;
    __global const float *src = x + r * cols;
    __global float *dst = y + r * cols;
    for (int j = 0; j < per_group; j++)
        for (int g = 0; g < groups; g++)
            dst[j * groups + g] = src[g * per_group + j];
}
#endif
