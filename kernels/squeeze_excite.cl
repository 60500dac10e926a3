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
 * Launch: one dimension, batch * LS work-items in groups of LS.
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
#define GATE(v) (clamp((v) + 3.0f, 0.0f, 6.0f) / 6.0f)
#else
#define GATE(v) (1.0f / (1.0f + exp_normal(-(v))))
#endif

__kernel void squeeze_excite(__global const float *restrict x, __global const float *restrict w1,
                             __global const float *restrict b1, __global const float *restrict w2,
                             __global const float *restrict b2, __global float *restrict gate,
                             int batch)
{
    __local float sums[PS * C];
    __local float hidden[R];
    const int n = get_group_id(0), l = get_local_id(0);
    if (n >= batch) /* the whole group: no barrier is left half-reached */
        return;
    const __global float *xn = x + n * (HW * C);

    /* The squeeze: stripe s sums positions s, s + PS, ...; a stripe's channel vectors are
     * neighbouring work-items' (a GPU's loads coalesce). */
    for (int j = l; j < PS * CV; j += LS) {
        const int s = j / CV, c = (j % CV) * VW;
        floatV sum = (floatV)(0.0f);
        for (int p = s; p < HW; p += PS)
            sum += LOADV(xn + p * C + c);
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

    /* The hidden layer, VR units a work-item. */
    for (int r = l * VR; r < R; r += LS * VR) {
#if HAS_B1
        floatR h = LOADR(b1 + r);
#else
        floatR h = (floatR)(0.0f);
#endif
        for (int c = 0; c < C; c++)
            h += sums[c] * LOADR(w1 + c * R + r);
        STORER(ACTIVATE(h), hidden + r);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* The gate layer, VG channels a work-item. */
    for (int g = l * VG; g < G; g += LS * VG) {
#if HAS_B2
        floatG v = LOADG(b2 + g);
#else
        floatG v = (floatG)(0.0f);
#endif
        for (int r = 0; r < R; r++)
            v += hidden[r] * LOADG(w2 + r * G + g);
        STOREG(GATE(v), gate + n * G + g);
    }
}
