/* ShuffleNet's channel shuffle over the last axis (cnnc/ir/channel_shuffle.py), as a gather:
 * output channel col of each row is input channel (col % groups) * (cols / groups) +
 * col / groups. Its gradient is the same kernel with cols / groups groups. Element-wise launch
 * (common.h's FOR_ELEMENTS) over the n = rows * cols outputs.
 */
#include "common.h"

#ifdef CHANNEL_SHUFFLE
__kernel void channel_shuffle(__global const float *restrict x, __global float *restrict y, int n,
                              int cols, int groups)
{
    const int per_group = cols / groups;
    FOR_ELEMENTS(i, n) {
        const int col = i % cols;
        y[i] = x[i - col + (col % groups) * per_group + col / groups];
    }
}
#endif
