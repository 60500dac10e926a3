/* The gradient of the channel slice (cnnc/ir/channel_slice.py): dx has `cols` channels per row,
 * dy channels start..start + len - 1 of them and zeros elsewhere, so every dx element is written
 * once and dx needs no clearing first. Element-wise launch (common.h's FOR_ELEMENTS) over the
 * n = rows * cols elements of dx. The forward slice is elementwise.cl's copy_block.
 */
#include "common.h"

#ifdef CHANNEL_SLICE_GRAD
__kernel void channel_slice_grad(__global const float *restrict dy, __global float *restrict dx,
                                 int n, int cols, int start, int len)
{
    FOR_ELEMENTS(i, n) {
        const int col = i % cols, j = col - start;
        dx[i] = (j >= 0 && j < len) ? dy[(i / cols) * len + j] : 0.0f;
    }
}
#endif
