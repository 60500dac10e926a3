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

/* Block copies as rows of one contiguous run each (tiling.py's run_grid cuts the launch):
 * dst[r * dst_stride + dst_off + k] = src[r * src_stride + src_off + k] for r < rows, k < run.
 * Concatenate copies each input into its place, slice (concatenate's gradient) and
 * channel_slice copy a part out. Work-item t takes rows [b * rows_per, (b + 1) * rows_per) and
 * of each the floats [c * chunk, (c + 1) * chunk) for b = t / chunks, c = t % chunks: one
 * division per work-item, then plain vector loops (-D VW divides run and chunk). On a CPU a
 * work-item moves a few KB (a per-element division cost more than the floats: 1.6 GB/s);
 * on a GPU one vector, so that neighbouring work-items touch neighbouring addresses. */
#ifdef COPY_BLOCK
__kernel void copy_block(__global const float *restrict src, __global float *restrict dst,
                         int rows, int run, int rows_per, int chunk, int chunks, int src_stride,
                         int src_off, int dst_stride, int dst_off)
{
    const int t = get_global_id(0), b = t / chunks;
    const int k0 = (t - b * chunks) * chunk, k1 = min(k0 + chunk, run);
    const int r1 = min((b + 1) * rows_per, rows);
    for (int r = b * rows_per; r < r1; r++) {
        __global const float *s = src + (long)r * src_stride + src_off;
        __global float *d = dst + (long)r * dst_stride + dst_off;
        for (int k = k0; k < k1; k += VW)
            STOREV(LOADV(s + k), d + k);
    }
}
#endif

/* concatenate of 2 to 4 tensors in one launch (copy_block's would be one launch each): output
 * row r of RUN floats is row r of x0 (RUN0 floats), then of x1 (RUN1), ... (-D INPUTS, RUN0 to
 * RUN3; the rows are the axes before the concatenated one, a run the rest). Cut like
 * copy_block: work-item t the floats [c * chunk, (c + 1) * chunk) of rows from b * rows_per,
 * each input copying its part of that range. -D VW divides every run. */
#ifdef CONCAT_ROWS
#if INPUTS < 4
#define RUN3 0
#endif
#if INPUTS < 3
#define RUN2 0
#endif
#define RUN (RUN0 + RUN1 + RUN2 + RUN3)

/* The floats [k0, k1) of an output row that the input of `run` floats from `at` holds. */
static void copy_part(__global const float *restrict s, __global float *restrict d, int at,
                      int run, int k0, int k1)
{
    const int hi = min(k1, at + run);
    for (int k = max(k0, at); k < hi; k += VW)
        STOREV(LOADV(s + k - at), d + k);
}

__kernel void concat_rows(__global const float *restrict x0, __global const float *restrict x1,
                          __global const float *restrict x2, __global const float *restrict x3,
                          __global float *restrict y, int rows, int rows_per, int chunk,
                          int chunks)
{
    const int t = get_global_id(0), b = t / chunks;
    const int k0 = (t - b * chunks) * chunk, k1 = min(k0 + chunk, RUN);
    const int r1 = min((b + 1) * rows_per, rows);
    for (int r = b * rows_per; r < r1; r++) {
        __global float *d = y + (long)r * RUN;
        copy_part(x0 + (long)r * RUN0, d, 0, RUN0, k0, k1);
        copy_part(x1 + (long)r * RUN1, d, RUN0, RUN1, k0, k1);
#if INPUTS > 2
        copy_part(x2 + (long)r * RUN2, d, RUN0 + RUN1, RUN2, k0, k1);
#endif
#if INPUTS > 3
        copy_part(x3 + (long)r * RUN3, d, RUN0 + RUN1 + RUN2, RUN3, k0, k1);
#endif
    }
}
#endif

/* Rows padded with zeros or cropped, cut like copy_block: output row r (of out_run floats) is
 * image b = r / oh's row oy = r % oh, which reads input row iy = oy - pt (of in_run floats, h
 * rows an image) shifted right by `lead` floats (negative: cropped), zeros where it reads
 * outside. zero_padding2d and cropping2d on NHWC rows (runs of w * c floats), and the
 * gradient of channel_slice (h = oh = rows: one row an image, lead = start). -D VW divides
 * in_run, out_run, lead and chunk. */
#ifdef PAD_ROWS
__kernel void pad_rows(__global const float *restrict x, __global float *restrict y, int rows,
                       int rows_per, int chunk, int chunks, int oh, int h, int pt, int in_run,
                       int out_run, int lead)
{
    const int t = get_global_id(0), b = t / chunks;
    const int k0 = (t - b * chunks) * chunk, k1 = min(k0 + chunk, out_run);
    const int r1 = min((b + 1) * rows_per, rows);
    for (int r = b * rows_per; r < r1; r++) {
        const int img = r / oh, iy = r - img * oh - pt;
        __global float *d = y + (long)r * out_run;
        __global const float *s = x + ((long)img * h + iy) * in_run - lead;
        const bool inside = iy >= 0 && iy < h;
        /* [k0, lo) zeros, [lo, hi) copied, [hi, k1) zeros */
        const int lo = inside ? clamp(lead, k0, k1) : k1;
        const int hi = inside ? clamp(lead + in_run, lo, k1) : k1;
        const floatV zero = 0.0f;
        for (int k = k0; k < lo; k += VW)
            STOREV(zero, d + k);
        for (int k = lo; k < hi; k += VW)
            STOREV(LOADV(s + k), d + k);
        for (int k = hi; k < k1; k += VW)
            STOREV(zero, d + k);
    }
}
#endif
