/* The epilogue of a transposed convolution, whose sums conv2d.cl's conv2d_grad_input (or its
 * phases) stores bare: bias and activation in place over an NHWC tensor of c channels.
 * -D HAS_BIAS, -D ACT_<NAME> (common.h: ACTIVATE).
 * Launch: one dimension, at least ceil(n / ELEMS) work-items (common.h: FOR_ELEMENTS).
 */
#include "common.h"

#ifdef BIAS_ACTIVATION
__kernel void bias_activation(__global float *restrict y, __global const float *restrict bias,
                              int n, int c)
{
    FOR_ELEMENTS(i, n) {
#if HAS_BIAS
        y[i] = ACTIVATE(y[i] + bias[i % c]);
#else
        y[i] = ACTIVATE(y[i]);
#endif
    }
}
#endif
