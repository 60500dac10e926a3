/* Batch normalisation over the last axis (channels), with tensors seen as [rows, cols].
 *
 * -D HAS_GAMMA (scale=True) and HAS_BETA (center=True), 0 or 1, always both. epsilon comes as a
 * float argument (build options carry integers only). The batch statistics and the per-channel
 * sums the gradients need come from reduce.cl.
 */
#include "common.h"

#ifdef VW
/* Channels col..col+VW-1's scale, gamma / sqrt(var + eps) (1 / sqrt(var + eps) without gamma),
 * and shift, beta (0 without). */
static floatV channel_scale(__global const float *var, __global const float *gamma, int col,
                            float eps)
{
    floatV scale = 1.0f / sqrt(LOADV(var + col) + eps);
#if HAS_GAMMA
    scale *= LOADV(gamma + col);
#endif
    return scale;
}

static floatV channel_shift(__global const float *beta, int col)
{
#if HAS_BETA
    return LOADV(beta + col);
#else
    return (floatV)(0.0f);
#endif
}
#endif

/* Inference: normalised with the moving statistics (where no layer before it took the batch
 * norm in: cnnc/passes/fold_batchnorm.py). Launch over (cols / VW, chunks) as the training
 * kernels below. */
#ifdef BATCHNORM
__kernel void batchnorm(__global const float *restrict x, __global const float *restrict gamma,
                        __global const float *restrict beta, __global const float *restrict mean,
                        __global const float *restrict var, __global float *restrict y, int rows,
                        int cols, int chunks, float eps)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const floatV m = LOADV(mean + col);
    const floatV scale = channel_scale(var, gamma, col, eps), shift = channel_shift(beta, col);
    const int end = part_begin(rows, k + 1, chunks);
    for (int r = part_begin(rows, k, chunks); r < end; r++)
        STOREV((LOADV(x + r * cols + col) - m) * scale + shift, y + r * cols + col);
}
#endif

/* The training kernels run over (cols / VW, chunks): each work-item takes VW neighbouring
 * channels (-D VW divides cols) over chunk k of the rows, so the per-channel factors (a square
 * root, a division, the affine parameters) are computed once per work-item, not per element,
 * and every load and store is a vector. */

/* Training: y = act((x - mean) * (gamma / sqrt(var + eps)) + beta [+ residual]) with the batch's
 * statistics, stats = [mean; biased variance]: batch norm, a residual add (-D HAS_RESIDUAL=1)
 * and the activation after it in one pass (-D ACT_<NAME>; common.h's `epilogue`). */
#ifdef BATCHNORM_TRAIN
__kernel void batchnorm_train(__global const float *restrict x,
                              __global const float *restrict stats,
                              __global const float *restrict gamma,
                              __global const float *restrict beta, __global float *restrict y,
                              int rows, int cols, int chunks, float eps RESIDUAL_PARAM)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const floatV mean = LOADV(stats + col);
    const floatV scale = channel_scale(stats + cols, gamma, col, eps);
    const floatV shift = channel_shift(beta, col);
    const int end = part_begin(rows, k + 1, chunks);
    for (int r = part_begin(rows, k, chunks); r < end; r++) {
        const floatV v = (LOADV(x + r * cols + col) - mean) * scale + shift;
        STOREV(epilogue(v, 0, RESIDUAL, col, r * cols + col), y + r * cols + col);
    }
}
#endif

/* dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps), g = dy * gamma, with
 * sums = [sum(dy); sum(dy * xhat)] per channel and inv_rows = 1 / rows. */
#ifdef BATCHNORM_GRAD_INPUT
__kernel void batchnorm_grad_input(__global const float *restrict x,
                                   __global const float *restrict stats,
                                   __global const float *restrict dy,
                                   __global const float *restrict gamma,
                                   __global const float *restrict sums,
                                   __global float *restrict dx, int rows, int cols, int chunks,
                                   float eps, float inv_rows)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const floatV mean = LOADV(stats + col);
    const floatV rstd = 1.0f / sqrt(LOADV(stats + cols + col) + eps);
#if HAS_GAMMA
    const floatV gm = LOADV(gamma + col);
#else
    const floatV gm = (floatV)(1.0f);
#endif
    const floatV mean_g = gm * LOADV(sums + col) * inv_rows;
    const floatV mean_gx = gm * LOADV(sums + cols + col) * inv_rows;
    const int end = part_begin(rows, k + 1, chunks);
    for (int r = part_begin(rows, k, chunks); r < end; r++) {
        const int i = r * cols + col;
        const floatV xhat = (LOADV(x + i) - mean) * rstd;
        STOREV((LOADV(dy + i) * gm - mean_g - xhat * mean_gx) * rstd, dx + i);
    }
}
#endif

/* Inference batch norm folded into the layer before it (conv2d_bn, depthwise_conv2d_bn,
 * dense_bn): with s = gamma / sqrt(var + eps) per output channel, w_out = w * s and
 * b_out = (bias - mean) * s + beta, from the live state on every run. The kernel w is seen as
 * [rows, cols] with the output channel as the column (HWIO, (in, units), and a depthwise
 * (KH, KW, C, M) kernel's c * M + m). -D HAS_BIAS as the layer's. Launch over (cols / VW,
 * chunks) as the training kernels; chunk 0 also writes the bias. */
#ifdef BATCHNORM_FOLD
__kernel void batchnorm_fold(__global const float *restrict w,
                             __global const float *restrict bias,
                             __global const float *restrict gamma,
                             __global const float *restrict beta,
                             __global const float *restrict mean,
                             __global const float *restrict var, __global float *restrict w_out,
                             __global float *restrict b_out, int rows, int cols, int chunks,
                             float eps)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const floatV s = channel_scale(var, gamma, col, eps);
    const int end = part_begin(rows, k + 1, chunks);
    for (int r = part_begin(rows, k, chunks); r < end; r++)
        STOREV(LOADV(w + r * cols + col) * s, w_out + r * cols + col);
    if (k != 0)
        return;
#if HAS_BIAS
    floatV b = LOADV(bias + col) - LOADV(mean + col);
#else
    floatV b = -LOADV(mean + col);
#endif
    b *= s;
#if HAS_BETA
    b += LOADV(beta + col);
#endif
    STOREV(b, b_out + col);
}
#endif

/* Batch norm's gradient through the activation after it (cnnc/ir/bn_act_grad.py): dv =
 * act'(v) * dy with v = (x - mean) * (gamma / sqrt(var + eps)) + beta recomputed as
 * batchnorm_train computes it (-D ACT_<NAME>; -D ACT_FROM_INPUT=1 when the derivative reads v,
 * else it reads y = ACTIVATE(v)). Launch over (cols / VW, chunks) as the kernels above.
 * batchnorm_act_grad_partial: [sum(dv); sum(dv * xhat)] of chunk k into partial[2k, col] and
 * partial[2k + 1, col], which reduce.cl's col_sum_finish adds up as 2 * cols columns (reduce.cl's
 * mode 3 of dv); batchnorm_act_grad_input: batchnorm_grad_input of dv. */
#if defined(BATCHNORM_ACT_GRAD_PARTIAL) || defined(BATCHNORM_ACT_GRAD_INPUT)
static floatV bn_act_dv(floatV v, floatV dy)
{
#if ACT_FROM_INPUT
    return activate_grad_of(v, dy);
#else
    return activate_grad_of(ACTIVATE(v), dy);
#endif
}
#endif

#ifdef BATCHNORM_ACT_GRAD_PARTIAL
__kernel void batchnorm_act_grad_partial(__global const float *restrict x,
                                         __global const float *restrict dy,
                                         __global const float *restrict stats,
                                         __global const float *restrict gamma,
                                         __global const float *restrict beta,
                                         __global float *restrict partial, int rows, int cols,
                                         int chunks, float eps)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const floatV mean = LOADV(stats + col);
    const floatV rstd = 1.0f / sqrt(LOADV(stats + cols + col) + eps);
    const floatV scale = channel_scale(stats + cols, gamma, col, eps);
    const floatV shift = channel_shift(beta, col);
    /* Even and odd rows into sums of their own, added at the end: one chain of dependent
     * adds per sum bounded the loop by the add's latency (1.4x slower on a Zen 3 core). The
     * factor rstd of dv * xhat is taken once per sum, outside the loop. */
    floatV s_dv0 = (floatV)(0.0f), s_dv1 = (floatV)(0.0f);
    floatV s_dvx0 = (floatV)(0.0f), s_dvx1 = (floatV)(0.0f);
    const int end = part_begin(rows, k + 1, chunks);
    int r = part_begin(rows, k, chunks);
    for (; r + 1 < end; r += 2) {
        const floatV xc0 = LOADV(x + r * cols + col) - mean;
        const floatV xc1 = LOADV(x + (r + 1) * cols + col) - mean;
        const floatV dv0 = bn_act_dv(xc0 * scale + shift, LOADV(dy + r * cols + col));
        const floatV dv1 = bn_act_dv(xc1 * scale + shift, LOADV(dy + (r + 1) * cols + col));
        s_dv0 += dv0;
        s_dvx0 += dv0 * xc0;
        s_dv1 += dv1;
        s_dvx1 += dv1 * xc1;
    }
    if (r < end) {
        const floatV xc = LOADV(x + r * cols + col) - mean;
        const floatV dv = bn_act_dv(xc * scale + shift, LOADV(dy + r * cols + col));
        s_dv0 += dv;
        s_dvx0 += dv * xc;
    }
    STOREV(s_dv0 + s_dv1, partial + 2 * k * cols + col);
    STOREV((s_dvx0 + s_dvx1) * rstd, partial + (2 * k + 1) * cols + col);
}
#endif

#ifdef BATCHNORM_ACT_GRAD_INPUT
__kernel void batchnorm_act_grad_input(__global const float *restrict x,
                                       __global const float *restrict stats,
                                       __global const float *restrict dy,
                                       __global const float *restrict gamma,
                                       __global const float *restrict beta,
                                       __global const float *restrict sums,
                                       __global float *restrict dx, int rows, int cols,
                                       int chunks, float eps, float inv_rows)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const floatV mean = LOADV(stats + col);
    const floatV rstd = 1.0f / sqrt(LOADV(stats + cols + col) + eps);
    const floatV scale = channel_scale(stats + cols, gamma, col, eps);
    const floatV shift = channel_shift(beta, col);
#if HAS_GAMMA
    const floatV gm = LOADV(gamma + col);
#else
    const floatV gm = (floatV)(1.0f);
#endif
    const floatV mean_g = gm * LOADV(sums + col) * inv_rows;
    const floatV mean_gx = gm * LOADV(sums + cols + col) * inv_rows;
    const int end = part_begin(rows, k + 1, chunks);
    for (int r = part_begin(rows, k, chunks); r < end; r++) {
        const int i = r * cols + col;
        const floatV xc = LOADV(x + i) - mean;
        const floatV dv = bn_act_dv(xc * scale + shift, LOADV(dy + i));
        STOREV((dv * gm - mean_g - (xc * rstd) * mean_gx) * rstd, dx + i);
    }
}
#endif
