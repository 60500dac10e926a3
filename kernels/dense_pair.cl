/* A dense layer and the softmax head reading it in one launch (cnnc/ir/dense_pair.py, bound by
 * cnnc/backends/opencl/bind_dense_pair.py): for each row m of x (M x K),
 *   h[r] = ACTIVATE(B1[r] + sum_k x[m, k] w1[k, r])      (the hidden layer, H units)
 *   l[n] = B2[n] + sum_r h[r] w2[r, n]                    (the head's logits, N units)
 *   y[m, n] = exp(l[n] - max l) / sum_j exp(l[j] - max l)
 * One work-group per row: h and l stay in local memory and nothing but y is written. At batch
 * 1 that is one launch where gemv.cl took two (gemv, then dense_softmax), and in a steady
 * stream of passes a launch costs more than such a layer's arithmetic. w1 is (K, H) and w2
 * (H, N) row-major, the dense layers' kernels.
 *
 * Build options (-D, integers): K, H, N; VH and VN the hidden layer's and the head's vector
 * widths (dividing H and N); LS work-items per group; HAS_B1, HAS_B2 the biases; ACT_<NAME>
 * the hidden activation (common.h's ACTIVATE). The softmax is computed as gemv.cl's
 * dense_softmax computes it: each exponential once, then the row's sum of them.
 * Launch: one dimension, rows * LS work-items in groups of LS.
 */
#include "common.h"

#if VH == 1
typedef float floatH;
#define LOADH(p) (*(p))
#define STOREH(v, p) (*(p) = (v))
#else
typedef CAT(float, VH) floatH;
#define LOADH(p) CAT(vload, VH)(0, (p))
#define STOREH(v, p) CAT(vstore, VH)((v), 0, (p))
#endif

#if VN == 1
typedef float floatN;
#define LOADN(p) (*(p))
#define STOREN(v, p) (*(p) = (v))
#else
typedef CAT(float, VN) floatN;
#define LOADN(p) CAT(vload, VN)(0, (p))
#define STOREN(v, p) CAT(vstore, VN)((v), 0, (p))
#endif

__kernel void dense_pair(__global const float *restrict x, __global const float *restrict w1,
                         __global const float *restrict b1, __global const float *restrict w2,
                         __global const float *restrict b2, __global float *restrict y)
{
    __local float hidden[H];
    __local float logits[N];
    /* The grid is exactly one group per row: no early return before the barriers. */
    const int m = get_group_id(0), l = get_local_id(0);
    __global const float *xm = x + m * K;

    /* The hidden layer, VH units a work-item. Four running sums over the inputs: one would be
     * a chain of K dependent multiply-adds, the latency of each paid in turn. */
    for (int r = l * VH; r < H; r += LS * VH) {
        floatH h0 = (floatH)(0.0f), h1 = h0, h2 = h0, h3 = h0;
        int k = 0;
        for (; k + 4 <= K; k += 4) {
            h0 = fma((floatH)(xm[k]), LOADH(w1 + k * H + r), h0);
            h1 = fma((floatH)(xm[k + 1]), LOADH(w1 + (k + 1) * H + r), h1);
            h2 = fma((floatH)(xm[k + 2]), LOADH(w1 + (k + 2) * H + r), h2);
            h3 = fma((floatH)(xm[k + 3]), LOADH(w1 + (k + 3) * H + r), h3);
        }
        for (; k < K; k++)
            h0 = fma((floatH)(xm[k]), LOADH(w1 + k * H + r), h0);
        floatH h = (h0 + h1) + (h2 + h3);
#if HAS_B1
        h += LOADH(b1 + r);
#endif
        STOREH(ACTIVATE(h), hidden + r);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* The head's logits, VN units a work-item, two running sums over the hidden units. */
    for (int n = l * VN; n < N; n += LS * VN) {
        floatN v0 = (floatN)(0.0f), v1 = v0;
        int r = 0;
        for (; r + 2 <= H; r += 2) {
            v0 = fma((floatN)(hidden[r]), LOADN(w2 + r * N + n), v0);
            v1 = fma((floatN)(hidden[r + 1]), LOADN(w2 + (r + 1) * N + n), v1);
        }
        if (r < H)
            v0 = fma((floatN)(hidden[r]), LOADN(w2 + r * N + n), v0);
        floatN v = v0 + v1;
#if HAS_B2
        v += LOADN(b2 + n);
#endif
        STOREN(v, logits + n);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* The softmax: every work-item reads the row's maximum, the exponentials are taken once
     * (each work-item its own units'), then every work-item reads their sum. */
    float mx = -INFINITY;
    for (int n = 0; n < N; n++)
        mx = max(mx, logits[n]);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int n = l; n < N; n += LS)
        logits[n] = exp(logits[n] - mx);
    barrier(CLK_LOCAL_MEM_FENCE);
    float s = 0.0f;
    for (int n = 0; n < N; n++)
        s += logits[n];
    const float inv = 1.0f / s;
    for (int n = l; n < N; n += LS)
        y[m * N + n] = logits[n] * inv;
}
