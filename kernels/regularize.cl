/* Weight regularizers (cnnc/ir/regularizers.py): a kernel's L2 penalty joined to the loss.
 *
 * l2_penalty: out[0] = loss[0] + l2 * sum(w[i]^2) over n weights. One work-group of GROUP
 * work-items (-D GROUP, a power of two): each sums a strided share, then a tree in local
 * memory, so the order of the sum is fixed and every run gives the same value.
 */

#ifdef L2_PENALTY
__kernel void l2_penalty(__global const float *restrict loss, __global const float *restrict w,
                         __global float *restrict out, int n, float l2)
{
    __local float sums[GROUP];
    const int lid = get_local_id(0);
    float s = 0.0f;
    for (int i = lid; i < n; i += GROUP)
        s += w[i] * w[i];
    sums[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = GROUP / 2; span > 0; span >>= 1) {
        if (lid < span)
            sums[lid] += sums[lid + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        out[0] = loss[0] + l2 * sums[0];
}
#endif
