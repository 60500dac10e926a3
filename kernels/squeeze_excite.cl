/* A squeeze-and-excitation gate in one launch (cnnc/ir/squeeze_excite.py, bound by
 * cnnc/backends/opencl/bind_squeeze_excite.py): for each example n of an NHWC map x,
 *   m[c]    = mean of x[n, :, :, c]                                 (the squeeze)
 *   h[r]    = ACTIVATE(B1[r] + sum_c m[c] w1[c, r])                 (the hidden layer)
 *   gate[g] = GATE(B2[g] + sum_r h[r] w2[r, g])                     (the gate layer)
 * One work-group per example: m and h stay in local memory, each weight is read once per
 * example, and nothing but the gate is written. w1 is (C, R) and w2 (R, G) row-major, a dense
 * layer's kernel or a 1x1 conv2d's (1, 1, C, R): the same floats.
 *
 * Build options (-D, integers): HW positions, C channels, R hidden units, G gate channels;
 * VW the pool's vector width (divides C), VR and VG the hidden and gate layers' (dividing R and
 * G); LS work-items per group; PS position stripes the pool splits over (PS > 1: each stripe
 * summed apart in local memory, then added: the GPU's way to fill a group with few channels);
 * HAS_B1, HAS_B2 the biases; ACT_<NAME> the hidden activation (common.h's ACTIVATE);
 * GATE_HARD_SIGMOID 1 for a hard-sigmoid gate, 0 for a sigmoid one (common.h builds one
 * activation per program, so the gate's two are written here, as common.h writes them).
 * Launch: one dimension, batch * LS work-items in groups of LS (the batch: the grid's).
 */
#include "common.h"

#define CV (C / VW)

#if VR == 1
typedef float floatR;
#define LOADR(p) (*(p))
#define STORER(v, p) (*(p) = (v))
#else
typedef CAT(float, VR) floatR;
#define LOADR(p) CAT(vload, VR)(0, (p))
#define STORER(v, p) CAT(vstore, VR)((v), 0, (p))
#endif

#if VG == 1
typedef float floatG;
#define LOADG(p) (*(p))
#define STOREG(v, p) (*(p) = (v))
#else
typedef CAT(float, VG) floatG;
#define LOADG(p) CAT(vload, VG)(0, (p))
#define STOREG(v, p) CAT(vstore, VG)((v), 0, (p))
#endif

#if GATE_HARD_SIGMOID
#define GATE(v) HARD_SIXTH(clamp((v) + 3.0f, 0.0f, 6.0f))
#else
#define GATE(v) (1.0f / (1.0f + exp_normal(-(v))))
#endif

__kernel void squeeze_excite(__global const float *restrict x, __global const float *restrict w1,
                             __global const float *restrict b1, __global const float *restrict w2,
                             __global const float *restrict b2, __global float *restrict gate)
{
    __local float sums[PS * C];
    __local float hidden[R];
    /* The grid is exactly one group per example: no early return for the groups past the
     * batch. (pocl 3.1 miscompiled one placed before the barriers: with 64-item groups it wrote
     * the gate past its end, seen by guard regions around the buffers, not by Oclgrind.) */
    const int n = get_group_id(0), l = get_local_id(0);
    const __global float *xn = x + n * (HW * C);

    /* The squeeze: stripe s sums positions s, s + PS, ...; a stripe's channel vectors are
     * neighbouring work-items' (a GPU's loads coalesce). Two running sums, every other
     * position each: a CPU's one work-item would otherwise wait on each add in turn. */
    for (int j = l; j < PS * CV; j += LS) {
        const int s = j / CV, c = (j % CV) * VW;
        floatV s0 = (floatV)(0.0f), s1 = s0;
        int p = s;
        for (; p + PS < HW; p += 2 * PS) {
            s0 += LOADV(xn + p * C + c);
            s1 += LOADV(xn + (p + PS) * C + c);
        }
        if (p < HW)
            s0 += LOADV(xn + p * C + c);
        floatV sum = s0 + s1;
#if PS == 1
        sum /= (float)HW;
#endif
        STOREV(sum, sums + s * C + c);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#if PS > 1
    for (int c = l; c < C; c += LS) {
        float sum = sums[c];
        for (int s = 1; s < PS; s++)
            sum += sums[s * C + c];
        sums[c] = sum / (float)HW;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#endif

    /* The hidden layer, VR units a work-item. Four running sums over the channels: one would
     * be a chain of C dependent multiply-adds, the latency of each paid in turn. */
    for (int r = l * VR; r < R; r += LS * VR) {
        floatR h0 = (floatR)(0.0f), h1 = h0, h2 = h0, h3 = h0;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
            h0 += sums[c] * LOADR(w1 + c * R + r);
            h1 += sums[c + 1] * LOADR(w1 + (c + 1) * R + r);
            h2 += sums[c + 2] * LOADR(w1 + (c + 2) * R + r);
            h3 += sums[c + 3] * LOADR(w1 + (c + 3) * R + r);
        }
        for (; c < C; c++)
            h0 += sums[c] * LOADR(w1 + c * R + r);
        floatR h = (h0 + h1) + (h2 + h3);
#if HAS_B1
        h += LOADR(b1 + r);
#endif
        STORER(ACTIVATE(h), hidden + r);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* The gate layer, VG channels a work-item, two running sums over the hidden units. */
    for (int g = l * VG; g < G; g += LS * VG) {
        floatG v0 = (floatG)(0.0f), v1 = v0;
        int r = 0;
        for (; r + 2 <= R; r += 2) {
            v0 += hidden[r] * LOADG(w2 + r * G + g);
            v1 += hidden[r + 1] * LOADG(w2 + (r + 1) * G + g);
        }
        if (r < R)
            v0 += hidden[r] * LOADG(w2 + r * G + g);
        floatG v = v0 + v1;
#if HAS_B2
        v += LOADG(b2 + g);
#endif
        STOREG(GATE(v), gate + n * G + g);
    }
}
