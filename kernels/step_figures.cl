/* A training step's figures kept on the device (cnnc/backends/opencl/queued_steps.py), so that
 * the host reads them every few steps instead of waiting for every step.
 *
 * record_step copies the batch's loss into losses[slot] and counts into correct[slot] the rows
 * whose prediction has its largest value at the target's class. The argmax is NumPy's: the
 * first largest value, a NaN counting as larger than everything (the host's count_correct gives
 * the same count). -D SPARSE=1: targets are int32 class indices, one per row; else rows of
 * `cols` floats (one-hot), whose argmax is the class. -D GROUP: the work-group size, a power of
 * two; the launch is one work-group. Counts are integers: the sum is exact in any order.
 */

#if SPARSE
#define TARGET_T int
#else
#define TARGET_T float
#endif

static int row_argmax(__global const float *x, int cols)
{
    int best = 0;
    float top = x[0];
    if (isnan(top))
        return 0;
    for (int j = 1; j < cols; j++) {
        const float v = x[j];
        if (isnan(v))
            return j;
        if (v > top) {
            top = v;
            best = j;
        }
    }
    return best;
}

__kernel void record_step(__global const float *restrict loss,
                          __global const float *restrict pred,
                          __global const TARGET_T *restrict target, int rows, int cols, int slot,
                          __global float *restrict losses, __global int *restrict correct)
{
    __local int counts[GROUP];
    const int lid = get_local_id(0);
    int c = 0;
    for (int r = lid; r < rows; r += GROUP) {
        const int k = row_argmax(pred + r * cols, cols);
#if SPARSE
        c += k == target[r];
#else
        c += k == row_argmax(target + r * cols, cols);
#endif
    }
    counts[lid] = c;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = GROUP / 2; s > 0; s >>= 1) {
        if (lid < s)
            counts[lid] += counts[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        losses[slot] = loss[0];
        correct[slot] = counts[0];
    }
}
