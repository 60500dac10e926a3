/* Local response normalisation across channels (cnnc/ir/lrn.py), tensors seen as [rows, cols]
 * with the channels in cols.
 *
 * y = x * d^-beta, d = bias + alpha/size * the sum of x^2 over the SIZE channels centred on x,
 * clipped at the row's ends. -D SIZE (odd, the window); alpha/size, beta and bias come as float
 * arguments (build options carry integers only). Every kernel recomputes the divisors from x,
 * SIZE loads a value from one row that the neighbouring work-items read too (the cache's).
 * Launch: each kernel ceil(n / ELEMS) work-items of ELEMS consecutive values (common.h:
 * FOR_ELEMENTS), n = rows * cols; the work-group size is the driver's, within the device's
 * limits. Flat indices fit an int: plan building refuses larger tensors (target.py).
 * Gradient, two launches: lrn_grad_scaled writes t = dy * x * d^(-beta-1) to a workspace, then
 * lrn_grad adds up t over each value's window (the windows are symmetric):
 * dx = dy * d^-beta - 2 * alpha/size * beta * x * window sum of t.
 */
#include "common.h"

#ifndef SIZE
#define SIZE 1
#endif
#define HALF (SIZE / 2)

/* d^e for d > 0 as exp2(e * log2(d)): on pocl 3.1 (Zen 4) pow() took about 1 us a value (AlexNet's
 * first LRN at batch 8, 2.3M values: 2.6 s), these two about a fifth of that (0.47 s); still
 * slower than NumPy (0.39 s): vectorising the power is an open item. */
#define POSITIVE_POW(d, e) exp2((e) * log2(d))

/* The sum of v^2 (SQUARE 1) or of v over the window of channels centred on flat index i. */
static float window_sum(__global const float *restrict v, int i, int cols, int square)
{
    const int c = i % cols;
    const int lo = max(c - HALF, 0) - c, hi = min(c + HALF, cols - 1) - c;
    float s = 0.0f;
    for (int k = lo; k <= hi; k++) {
        const float a = v[i + k];
        s += square ? a * a : a;
    }
    return s;
}

#ifdef LRN
__kernel void lrn(__global const float *restrict x, __global float *restrict y, int n, int cols,
                  float alpha_over_size, float beta, float bias)
{
    FOR_ELEMENTS(i, n) {
        const float d = bias + alpha_over_size * window_sum(x, i, cols, 1);
        y[i] = x[i] * POSITIVE_POW(d, -beta);
    }
}
#endif

#ifdef LRN_GRAD_SCALED
__kernel void lrn_grad_scaled(__global const float *restrict x, __global const float *restrict dy,
                              __global float *restrict t, int n, int cols, float alpha_over_size,
                              float beta, float bias)
{
    FOR_ELEMENTS(i, n) {
        const float d = bias + alpha_over_size * window_sum(x, i, cols, 1);
        t[i] = dy[i] * x[i] * POSITIVE_POW(d, -beta - 1.0f);
    }
}
#endif

#ifdef LRN_GRAD
__kernel void lrn_grad(__global const float *restrict x, __global const float *restrict dy,
                       __global const float *restrict t, __global float *restrict dx, int n,
                       int cols, float alpha_over_size, float beta, float bias)
{
    FOR_ELEMENTS(i, n) {
        const float d = bias + alpha_over_size * window_sum(x, i, cols, 1);
        dx[i] = dy[i] * POSITIVE_POW(d, -beta)
                - 2.0f * alpha_over_size * beta * x[i] * window_sum(t, i, cols, 0);
    }
}
#endif
