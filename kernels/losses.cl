/* The losses and their gradients with respect to the prediction (cnnc/ir/losses.py).
 *
 * Tensors are seen as [rows, cols] with cols the last axis. One work-item per row. Losses write
 * one value per row; reduce.cl's sum_all turns them into the mean. -D SPARSE=1: targets are
 * int32 class indices, one per row (an index outside 0..cols-1 gives NaN rather than reading out
 * of bounds). CLIP_EPS is Keras' epsilon for probabilities. The cross-entropies take the label
 * smoothing e as their last argument (0: none).
 */
#include "rows.h"

#define CLIP_EPS 1e-7f

#if SPARSE
#define TARGET_T int
#else
#define TARGET_T float
#endif

/* Keras' clip of probabilities to [eps, 1 - eps]. */
static float clip_probability(float p)
{
    return clamp(p, CLIP_EPS, 1.0f - CLIP_EPS);
}

/* d/dq of -target * log(clip_probability(q)): -target / q, or 0 where the clip is active. */
static float clipped_log_grad(float q, float target)
{
    const bool active = q >= CLIP_EPS && q <= 1.0f - CLIP_EPS;
    return active ? -target / q : 0.0f;
}

/* The target's weight of class j in row r, label-smoothed by e: (1 - e) * t_j + e / cols. */
static float target_weight(__global const TARGET_T *t, int r, int j, int cols, float e)
{
#if SPARSE
    const float w = t[r] == j ? 1.0f : 0.0f;
#else
    const float w = t[r * cols + j];
#endif
    return e == 0.0f ? w : (1.0f - e) * w + e / (float)cols;
}

static bool target_valid(__global const TARGET_T *t, int r, int cols)
{
#if SPARSE
    return t[r] >= 0 && t[r] < cols;
#else
    return true;
#endif
}

/* Both cross-entropies are -sum over j of target_j * log q_j, per row. softmax_cross_entropy
 * scores q = softmax(logits): log q_j = x_j - log_sum_exp(x); cross_entropy (Keras, on
 * probabilities) q = clip(pred / sum(pred)). `norm`, computed once per row, is that log_sum_exp
 * or that sum. */
static float log_q(__global const float *x, int j, float norm)
{
#ifdef SOFTMAX_CROSS_ENTROPY
    return x[j] - norm;
#else
    return log(clip_probability(x[j] / norm));
#endif
}

/* The loss of row r with scores x, targets smoothed by e; NaN for a class index out of range. */
static float row_cross_entropy(__global const float *x, __global const TARGET_T *target, int r,
                               int cols, float norm, float e)
{
    if (!target_valid(target, r, cols))
        return NAN;
#if SPARSE
    if (e == 0.0f)
        return -log_q(x, target[r], norm);
#endif
    float s = 0.0f;
    for (int j = 0; j < cols; j++)
        s += target_weight(target, r, j, cols, e) * log_q(x, j, norm);
    return -s;
}

#ifdef SOFTMAX_CROSS_ENTROPY
__kernel void softmax_cross_entropy(__global const float *restrict logits,
                                    __global const TARGET_T *restrict target,
                                    __global float *restrict loss, int rows, int cols,
                                    float smoothing)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *l = logits + r * cols;
    loss[r] = row_cross_entropy(l, target, r, cols, log_sum_exp(l, cols), smoothing);
}
#endif

/* (softmax(logits) - smoothed target) * scale, scale = 1 / rows. */
#ifdef SOFTMAX_CROSS_ENTROPY_GRAD
__kernel void softmax_cross_entropy_grad(__global const float *restrict logits,
                                         __global const TARGET_T *restrict target,
                                         __global float *restrict dx, int rows, int cols,
                                         float scale, float smoothing)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *l = logits + r * cols;
    const bool valid = target_valid(target, r, cols);
    const float lse = log_sum_exp(l, cols);
    for (int j = 0; j < cols; j++) {
        const float g = exp(l[j] - lse) - target_weight(target, r, j, cols, smoothing);
        dx[r * cols + j] = valid ? g * scale : NAN;
    }
}
#endif

#ifdef CROSS_ENTROPY
__kernel void cross_entropy(__global const float *restrict pred,
                            __global const TARGET_T *restrict target,
                            __global float *restrict loss, int rows, int cols, float smoothing)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *p = pred + r * cols;
    loss[r] = row_cross_entropy(p, target, r, cols, row_sum(p, cols), smoothing);
}
#endif

/* d loss / d pred of cross_entropy (times scale = 1 / rows): with q = p / total clipped,
 * g_j = -target_j / q_j where the clip is inactive and 0 where it is active;
 * dpred_k = (g_k - sum_j g_j * q_j) / total. */
#ifdef CROSS_ENTROPY_GRAD
__kernel void cross_entropy_grad(__global const float *restrict pred,
                                 __global const TARGET_T *restrict target,
                                 __global float *restrict dx, int rows, int cols, float scale,
                                 float smoothing)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *p = pred + r * cols;
    const bool valid = target_valid(target, r, cols);
    const float total = row_sum(p, cols);
    float dot = 0.0f;
    for (int j = 0; j < cols; j++) {
        const float q = p[j] / total;
        dot += clipped_log_grad(q, target_weight(target, r, j, cols, smoothing)) * q;
    }
    for (int j = 0; j < cols; j++) {
        const float g = clipped_log_grad(p[j] / total,
                                         target_weight(target, r, j, cols, smoothing));
        dx[r * cols + j] = valid ? (g - dot) / total * scale : NAN;
    }
}
#endif

/* sum((pred - target)^2) per row. */
#ifdef MEAN_SQUARED_ERROR
__kernel void mean_squared_error(__global const float *restrict pred,
                                 __global const float *restrict target,
                                 __global float *restrict loss, int rows, int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    float s = 0.0f;
    for (int j = 0; j < cols; j++) {
        const float d = pred[r * cols + j] - target[r * cols + j];
        s += d * d;
    }
    loss[r] = s;
}
#endif

/* 2 * (pred - target) * scale, scale = 1 / pred.size; one work-item per element. */
#ifdef MEAN_SQUARED_ERROR_GRAD
__kernel void mean_squared_error_grad(__global const float *restrict pred,
                                      __global const float *restrict target,
                                      __global float *restrict dx, int n, float scale)
{
    const int i = get_global_id(0);
    if (i < n)
        dx[i] = 2.0f * (pred[i] - target[i]) * scale;
}
#endif
