/* ShuffleNet's channel shuffle over the last axis (cnnc/ir/channel_shuffle.py), as a gather:
 * output channel j * GROUPS + g of each row is input channel g * (cols / GROUPS) + j. Its
 * gradient is the same kernel with cols / groups groups.
 * -D GROUPS: the groups, so that the inner loop over them unrolls into GROUPS vector loads.
 * Launch (tiling.py's run_grid over rows of cols floats, in whole rows): work-item t takes rows
 * [t * rows_per, (t + 1) * rows_per), walking each row's outputs in order: no integer division
 * per element, which on a CPU driver cost more than moving the floats (pocl, Zen 4: 13 ns an
 * element with four divisions), and on a CPU enough rows a work-item that its cost vanishes.
 * VW: each step takes VW runs of GROUPS outputs (-D VW divides cols / GROUPS): one vector load
 * per group, stored interleaved.
 */
#include "common.h"

#ifdef CHANNEL_SHUFFLE
__kernel void channel_shuffle(__global const float *restrict x, __global float *restrict y,
                              int rows, int cols, int rows_per)
{
    const int r0 = get_global_id(0) * rows_per, r1 = min(r0 + rows_per, rows);
    const int per_group = cols / GROUPS;
    for (int r = r0; r < r1; r++) {
        __global const float *src = x + (long)r * cols;
        __global float *dst = y + (long)r * cols;
        for (int j = 0; j < per_group; j += VW) {
            float v[GROUPS][VW];
            for (int g = 0; g < GROUPS; g++)
                for (int i = 0; i < VW; i++)
                    v[g][i] = src[g * per_group + j + i];
            for (int i = 0; i < VW; i++)
                for (int g = 0; g < GROUPS; g++)
                    dst[(j + i) * GROUPS + g] = v[g][i];
        }
    }
}
#endif

/* concat_shuffle (cnnc/ir/concat_shuffle.py): ShuffleNetV2's concatenation of GROUPS inputs of
 * P channels each, its channel shuffle and a slice of it, as one gather. Shuffle group g is
 * input g, so output channel (j - J0) * GROUPS + g of a row is x_g[j], j in [J0, J1): each
 * input is read once and neither the concatenation nor the full shuffle is written.
 * -D GROUPS (2..4), P, J0, J1, VW (divides J1 - J0). Launch as channel_shuffle (run_grid):
 * work-item t takes rows [t * rows_per, (t + 1) * rows_per).
 */
#ifdef CONCAT_SHUFFLE
#if GROUPS > 2
#define SRC2_PARAM , __global const float *restrict x2
#else
#define SRC2_PARAM
#endif
#if GROUPS > 3
#define SRC3_PARAM , __global const float *restrict x3
#else
#define SRC3_PARAM
#endif

__kernel void concat_shuffle(__global const float *restrict x0, __global const float *restrict x1
                             SRC2_PARAM SRC3_PARAM, __global float *restrict y, int rows,
                             int rows_per)
{
#if GROUPS == 2
    __global const float *src[GROUPS] = {x0, x1};
#elif GROUPS == 3
    __global const float *src[GROUPS] = {x0, x1, x2};
#else
    __global const float *src[GROUPS] = {x0, x1, x2, x3};
#endif
    const int r0 = get_global_id(0) * rows_per, r1 = min(r0 + rows_per, rows);
    for (int r = r0; r < r1; r++) {
        __global float *dst = y + (long)r * ((J1 - J0) * GROUPS);
        for (int j = J0; j < J1; j += VW) {
            float v[GROUPS][VW];
            for (int g = 0; g < GROUPS; g++)
                for (int i = 0; i < VW; i++)
                    v[g][i] = src[g][(long)r * P + j + i];
            for (int i = 0; i < VW; i++)
                for (int g = 0; g < GROUPS; g++)
                    dst[(j - J0 + i) * GROUPS + g] = v[g][i];
        }
    }
}
#endif
