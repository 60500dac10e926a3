/* Element-wise kernels: activations and their gradients, sums, and block copies.
 *
 * Memory-bound, so they are specialised only by what changes the arithmetic (-D ACT_<NAME>,
 * see common.h); element counts come as arguments and one program serves every shape.
 * Launch: one dimension, at least ceil(n / ELEMS) work-items (common.h: FOR_ELEMENTS).
 */
#include "common.h"

/* With -D VW=ELEMS (a CPU's several elements per work-item), a work-item's whole run is one
 * vector: pocl ran the issue-20 activations' exp and erfc one lane at a time in the scalar
 * loop. The last, partial run takes the loop (and every run, where VW is not ELEMS). */
#if defined(VW) && VW > 1 && VW == ELEMS
#define VECTOR_RUN(i0, n) const int i0 = get_global_id(0) * VW; if (i0 + VW <= (n))
#endif

#ifdef ACTIVATION
__kernel void activation(__global const float *restrict x, __global float *restrict y, int n)
{
#ifdef VECTOR_RUN
    VECTOR_RUN(i0, n) {
        STOREV(ACTIVATE(LOADV(x + i0)), y + i0);
        return;
    }
#endif
    FOR_ELEMENTS(i, n)
        y[i] = ACTIVATE(x[i]);
}
#endif

/* dx from the activation's output y (its input x for a relu with parameters) and dy, by
 * common.h's ACTIVATE_GRAD (softmax has its own kernel in softmax.cl). */
#ifdef ACTIVATION_GRAD
__kernel void activation_grad(__global const float *restrict v, __global const float *restrict dy,
                              __global float *restrict dx, int n)
{
#ifdef VECTOR_RUN
    VECTOR_RUN(i0, n) {
        STOREV(activate_grad_at(v, i0, LOADV(dy + i0)), dx + i0);
        return;
    }
#endif
    FOR_ELEMENTS(i, n)
        dx[i] = ACTIVATE_GRAD(v[i], dy[i]);
}
#endif

/* dx = ACTIVATE_GRAD(v, a + b): two gradient contributions summed and an activation's derivative
 * applied in one pass (the add_act_grad op, cnnc/ir/act_grad_fused.py). */
#ifdef ADD_ACT_GRAD
__kernel void add_act_grad(__global const float *restrict a, __global const float *restrict b,
                           __global const float *restrict v, __global float *restrict dx, int n)
{
#ifdef VECTOR_RUN
    VECTOR_RUN(i0, n) {
        STOREV(activate_grad_at(v, i0, LOADV(a + i0) + LOADV(b + i0)), dx + i0);
        return;
    }
#endif
    FOR_ELEMENTS(i, n)
        dx[i] = ACTIVATE_GRAD(v[i], a[i] + b[i]);
}
#endif

/* y = 0 (dx cells that no pooling window covers). */
#ifdef ZERO
__kernel void zero(__global float *restrict y, int n)
{
    FOR_ELEMENTS(i, n)
        y[i] = 0.0f;
}
#endif

#ifdef ADD
__kernel void add(__global const float *restrict a, __global const float *restrict b,
                  __global float *restrict y, int n)
{
    FOR_ELEMENTS(i, n)
        y[i] = a[i] + b[i];
}
#endif

/* y += a: the third and later inputs of an n-ary add. */
#ifdef ACCUMULATE
__kernel void accumulate(__global const float *restrict a, __global float *restrict y, int n)
{
    FOR_ELEMENTS(i, n)
        y[i] += a[i];
}
#endif

/* A block copy along one axis, with the tensors seen as [outer, axis, inner]:
 * dst[o, dst_start + j, i] = src[o, src_start + j, i] for j < len. Concatenate copies each input
 * into its place; slice (the gradient of concatenate) copies a part out. */
#ifdef COPY_BLOCK
__kernel void copy_block(__global const float *restrict src, __global float *restrict dst,
                         int outer, int len, int inner, int src_axis, int src_start,
                         int dst_axis, int dst_start)
{
    FOR_ELEMENTS(t, outer * len * inner) {
        const int i = t % inner, j = (t / inner) % len, o = t / (inner * len);
        dst[(o * dst_axis + dst_start + j) * inner + i] =
            src[(o * src_axis + src_start + j) * inner + i];
    }
}
#endif

/* Zero padding (zero_padding2d) of an NHWC tensor: y[n, oy, ox, c] = x[n, oy - pt, ox - pl, c]
 * inside the input, 0 in the padding. `n` counts y's elements. */
#ifdef ZERO_PADDING2D
__kernel void zero_padding2d(__global const float *restrict x, __global float *restrict y, int n,
                             int h, int w, int c, int oh, int ow, int pt, int pl)
{
    FOR_ELEMENTS(t, n) {
        const int ch = t % c, ox = (t / c) % ow, oy = (t / (c * ow)) % oh;
        const int b = t / (c * ow * oh), iy = oy - pt, ix = ox - pl;
        const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
        y[t] = inside ? x[((b * h + iy) * w + ix) * c + ch] : 0.0f;
    }
}
#endif
