/* Batch normalisation over the last axis (channels), with tensors seen as [rows, cols].
 *
 * -D HAS_GAMMA (scale=True) and HAS_BETA (center=True), 0 or 1, always both. epsilon comes as a
 * float argument (build options carry integers only). The batch statistics and the per-channel
 * sums the gradients need come from reduce.cl.
 */
#include "common.h"

/* gamma[c] and beta[c], or 1 and 0 for a layer without them (gamma or beta is then NULL and the
 * constant condition keeps it from being read). */
static float gamma_of(__global const float *gamma, int c)
{
    return HAS_GAMMA ? gamma[c] : 1.0f;
}

static float beta_of(__global const float *beta, int c)
{
    return HAS_BETA ? beta[c] : 0.0f;
}

/* (x - mean) / sqrt(var + eps) * gamma + beta, for channel c. */
static float normalise(float x, float mean, float var, float eps, __global const float *gamma,
                       __global const float *beta, int c)
{
    return (x - mean) / sqrt(var + eps) * gamma_of(gamma, c) + beta_of(beta, c);
}

/* Inference: normalised with the moving statistics. */
#ifdef BATCHNORM
__kernel void batchnorm(__global const float *restrict x, __global const float *restrict gamma,
                        __global const float *restrict beta, __global const float *restrict mean,
                        __global const float *restrict var, __global float *restrict y, int n,
                        int cols, float eps)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int c = i % cols;
    y[i] = normalise(x[i], mean[c], var[c], eps, gamma, beta, c);
}
#endif

/* The training kernels run over (cols / VW, chunks): each work-item takes VW neighbouring
 * channels (-D VW divides cols) over chunk k of the rows, so the per-channel factors (a square
 * root, a division, the affine parameters) are computed once per work-item, not per element,
 * and every load and store is a vector. */

/* Training: y = act((x - mean) * (gamma / sqrt(var + eps)) + beta) with the batch's statistics,
 * stats = [mean; biased variance]: batch norm and the activation after it in one pass (-D
 * ACT_<NAME>, common.h; none: linear). */
#ifdef BATCHNORM_TRAIN
__kernel void batchnorm_train(__global const float *restrict x,
                              __global const float *restrict stats,
                              __global const float *restrict gamma,
                              __global const float *restrict beta, __global float *restrict y,
                              int rows, int cols, int chunks, float eps)
{
    const int col = get_global_id(0) * VW;
    const int k = get_global_id(1);
    if (col >= cols || k >= chunks)
        return;
    const floatV mean = LOADV(stats + col);
    floatV scale = 1.0f / sqrt(LOADV(stats + cols + col) + eps);
#if HAS_GAMMA
    scale *= LOADV(gamma + col);
#endif
#if HAS_BETA
    const floatV shift = LOADV(beta + col);
#else
    const floatV shift = (floatV)(0.0f);
#endif
    const int end = part_begin(rows, k + 1, chunks);
    for (int r = part_begin(rows, k, chunks); r < end; r++) {
        const floatV v = (LOADV(x + r * cols + col) - mean) * scale + shift;
        STOREV(ACTIVATE(v), y + r * cols + col);
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

/* Inference batch norm folded into the layer before it (conv2d_bn, dense_bn): with
 * s = gamma / sqrt(var + eps) per output channel c (the kernel's last axis, `cols` of them),
 * w_out = w * s and b_out = (bias - mean) * s + beta, from the live state on every run.
 * -D HAS_BIAS as the layer's. Launch: one dimension over n + cols (n: the kernel's elements). */
#ifdef BATCHNORM_FOLD
__kernel void batchnorm_fold(__global const float *restrict w,
                             __global const float *restrict bias,
                             __global const float *restrict gamma,
                             __global const float *restrict beta,
                             __global const float *restrict mean,
                             __global const float *restrict var, __global float *restrict w_out,
                             __global float *restrict b_out, int n, int cols, float eps)
{
    const int i = get_global_id(0);
    if (i >= n + cols)
        return;
    const int c = i < n ? i % cols : i - n;
    const float s = gamma_of(gamma, c) * (1.0f / sqrt(var[c] + eps));
    if (i < n) {
        w_out[i] = w[i] * s;
    } else {
        const float b = HAS_BIAS ? bias[c] : 0.0f;
        b_out[c] = (b - mean[c]) * s + beta_of(beta, c);
    }
}
#endif
