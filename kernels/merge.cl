/* Merges with broadcasting (add, subtract, multiply, maximum, minimum, average) and their
 * gradients: cnnc/ir/merges.py, bound by cnnc/backends/opencl/bind_merges.py.
 *
 * Every tensor is seen as (N, D1, D2, D3): a lower-rank one gets size-1 axes after the batch
 * axis (Keras' broadcasting). An operand is read through four strides, 0 on the axes it is
 * broadcast along, so one program serves every pair of shapes. Sizes and strides are kernel
 * arguments; the build options are only
 *   MERGE_ADD | MERGE_SUB | MERGE_MUL | MERGE_MAX | MERGE_MIN   the binary combination (merge)
 *   GRAD_SUM | GRAD_MUL | GRAD_MAX | GRAD_MIN                   the gradient's weight (merge_grad)
 *   ACT_<NAME> (common.h)  the activation merge applies as it stores (a fused merge + act)
 *   ELEMS (common.h)        elements per work-item
 *   VW (common.h)           channels per work-item (merge_grad_channels)
 * Launch: one dimension, FOR_ELEMENTS over the elements written; merge_grad_channels: one
 * work-item per VW channels of one example.
 */
#include "common.h"

#if defined(MERGE_ADD)
#define COMBINE(u, v) ((u) + (v))
#elif defined(MERGE_SUB)
#define COMBINE(u, v) ((u) - (v))
#elif defined(MERGE_MUL)
#define COMBINE(u, v) ((u) * (v))
#elif defined(MERGE_MAX)
#define COMBINE(u, v) fmax((u), (v))
#elif defined(MERGE_MIN)
#define COMBINE(u, v) fmin((u), (v))
#endif

#ifdef COMBINE
/* y = ACTIVATE(scale * COMBINE(a, b)) over y's n elements. An n-ary merge folds from the left:
 * its later launches read y as `a` (so a and y are not restrict). */
__kernel void merge(__global const float *a, int a0, int a1, int a2, int a3,
                    __global const float *restrict b, int b0, int b1, int b2, int b3,
                    __global float *y, int n, int d1, int d2, int d3, float scale)
{
    /* The operands' offsets are found by division once per row of d3 elements (once per
     * work-item where ELEMS <= d3), then stepped along the row: integer divisions per element
     * cost more than the arithmetic they index. */
    int k = d3, pa = 0, pb = 0;
    FOR_ELEMENTS(t, n) {
        if (k == d3) {
            k = t % d3;
            const int j = (t / d3) % d2, i = (t / (d3 * d2)) % d1, m = t / (d3 * d2 * d1);
            pa = m * a0 + i * a1 + j * a2 + k * a3;
            pb = m * b0 + i * b1 + j * b2 + k * b3;
        }
        y[t] = ACTIVATE(scale * COMBINE(a[pa], b[pb]));
        k++;
        pa += a3;
        pb += b3;
    }
}
#endif

#if defined(GRAD_SUM) || defined(GRAD_MUL) || defined(GRAD_MAX) || defined(GRAD_MIN)
/* dx[e] = scale * sum of dy * w over the output positions element e of x (shape (N, T1, T2, T3))
 * was broadcast to (dy of shape (N, D1, D2, D3)): w is 1 (GRAD_SUM), the other operand
 * (GRAD_MUL), or the binary maximum's (minimum's) share of x: 1 where x wins, 1/2 on a tie
 * (PyTorch's rule), 0 where `other` wins (GRAD_MAX, GRAD_MIN). Each work-item sums its own
 * elements' positions, so no atomics; `other` is read through its strides. */
__kernel void merge_grad(__global const float *restrict dy, __global const float *restrict x,
                         __global const float *restrict other, int o0, int o1, int o2, int o3,
                         __global float *restrict dx, int n, int t1, int t2, int t3,
                         int d1, int d2, int d3, float scale)
{
    /* an axis is summed over where x has size 1 and dy more */
    const int r1 = t1 == d1 ? 1 : d1, r2 = t2 == d2 ? 1 : d2, r3 = t3 == d3 ? 1 : d3;
    FOR_ELEMENTS(e, n) {
        const int k = e % t3, j = (e / t3) % t2, i = (e / (t3 * t2)) % t1;
        const int m = e / (t3 * t2 * t1);
#if defined(GRAD_MAX) || defined(GRAD_MIN)
        const float xv = x[e];
#endif
        float s = 0.0f;
        for (int ii = 0; ii < r1; ii++) {
            const int I = r1 == 1 ? i : ii;
            for (int jj = 0; jj < r2; jj++) {
                const int J = r2 == 1 ? j : jj;
                for (int kk = 0; kk < r3; kk++) {
                    const int K = r3 == 1 ? k : kk;
                    float g = dy[((m * d1 + I) * d2 + J) * d3 + K];
#ifndef GRAD_SUM
                    const float ov = other[m * o0 + I * o1 + J * o2 + K * o3];
#endif
#if defined(GRAD_MUL)
                    g *= ov;
#elif defined(GRAD_MAX)
                    g *= xv > ov ? 1.0f : (xv == ov ? 0.5f : 0.0f);
#elif defined(GRAD_MIN)
                    g *= xv < ov ? 1.0f : (xv == ov ? 0.5f : 0.0f);
#endif
                    s += g;
                }
            }
        }
        dx[e] = scale * s;
    }
}
#endif

#ifdef MERGE_GRAD_CHANNELS
/* merge_grad for an operand of shape (N, 1, 1, C) broadcast over dy's P = D1 * D2 positions
 * (a squeeze-excite gate, a per-channel bias): dx[n, c] = scale * sum over p of dy[n, p, c] * w,
 * w as in merge_grad, with `other` (GRAD_MUL, GRAD_MAX, GRAD_MIN) of dy's shape. The row-wise
 * form of merge_grad's sum: each work-item adds VW channels of one example down the positions,
 * whole vectors of contiguous channels per load and no division per element (merge_grad's
 * strided walk costs a division per term and loads one float at a time). Two partial sums
 * hide the add latency. */
static floatV grad_term(__global const float *dy, __global const float *other, floatV xv, int at)
{
    floatV g = LOADV(dy + at);
#if defined(GRAD_MUL)
    g *= LOADV(other + at);
#elif defined(GRAD_MAX) || defined(GRAD_MIN)
    const floatV ov = LOADV(other + at);
#if defined(GRAD_MAX)
    g *= select(select((floatV)(0.0f), (floatV)(0.5f), xv == ov), (floatV)(1.0f), xv > ov);
#else
    g *= select(select((floatV)(0.0f), (floatV)(0.5f), xv == ov), (floatV)(1.0f), xv < ov);
#endif
#endif
    return g;
}

__kernel void merge_grad_channels(__global const float *restrict dy,
                                  __global const float *restrict x,
                                  __global const float *restrict other,
                                  __global float *restrict dx, int vectors, int P, int C,
                                  float scale)
{
    const int t = get_global_id(0);
    if (t >= vectors)
        return;
    const int per_example = C / VW;
    const int n = t / per_example, c = (t % per_example) * VW;
    const int base = n * P * C + c;
#if defined(GRAD_MAX) || defined(GRAD_MIN)
    const floatV xv = LOADV(x + n * C + c);
#else
    const floatV xv = (floatV)(0.0f);
#endif
    floatV s0 = (floatV)(0.0f), s1 = (floatV)(0.0f);
    int p = 0;
    for (; p + 1 < P; p += 2) {
        s0 += grad_term(dy, other, xv, base + p * C);
        s1 += grad_term(dy, other, xv, base + (p + 1) * C);
    }
    if (p < P)
        s0 += grad_term(dy, other, xv, base + p * C);
    STOREV(scale * (s0 + s1), dx + n * C + c);
}
#endif
