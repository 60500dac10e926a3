/* In-place state updates: optimizer steps and batch-norm moving averages.
 *
 * The per-step scalars are computed once on the host by the update op's `scalars` rule
 * (cnnc/ir/updates.py), so the NumPy and OpenCL backends run the same arithmetic, and reach
 * the kernel in a table the runtime writes once per step for every update (s, from index at):
 * setting them as kernel arguments cost host time per parameter per step. -D MOMENTUM, NESTEROV select the SGD variant; -D DECAY=1
 * applies decoupled weight decay first, p *= decay (decay = 1 - lr * weight_decay, the last
 * scalar but one), as Keras 3 and torch.optim.AdamW do before the step. -D L2=1 adds an L2
 * kernel regularizer's gradient to g first: g + l2x2 * p (l2x2 = 2 * l2, the last scalar),
 * from p before the decay, as Keras differentiates the penalty in the loss.
 * Launch: one dimension over the parameter's elements.
 */
#include "common.h"

#ifndef DECAY
#define DECAY 0
#endif
#ifndef L2
#define L2 0
#endif

/* The gradient with the L2 penalty's, then the weight decay: the first lines of every step. */
#if L2
#define GRADIENT(i) (g[i] + l2x2 * p[i])
#else
#define GRADIENT(i) g[i]
#endif
#if DECAY
#define DECAY_WEIGHT(i) p[i] *= decay
#else
#define DECAY_WEIGHT(i)
#endif

/* Keras SGD. Without momentum: p -= lr*g. With: v = momentum*v - lr*g; p += v, or
 * p += momentum*v - lr*g with nesterov. */
#ifdef SGD_UPDATE
__kernel void sgd_update(__global float *restrict p, __global const float *restrict g,
                         __global float *restrict velocity, int n,
                         __global const float *restrict s, int at)
{
    const float lr = s[at], momentum = s[at + 1], decay = s[at + 2], l2x2 = s[at + 3];
    FOR_ELEMENTS(i, n) {
        const float gi = GRADIENT(i);
        DECAY_WEIGHT(i);
#if MOMENTUM
        const float v = momentum * velocity[i] - lr * gi;
        velocity[i] = v;
#if NESTEROV
        p[i] += momentum * v - lr * gi;
#else
        p[i] += v;
#endif
#else
        p[i] -= lr * gi;
#endif
    }
}
#endif

/* Adam's moment estimates after gradient g, element i: m += (g - m)(1 - b1);
 * v += (g^2 - v)(1 - b2). Nadam updates them the same way. */
static void update_moments(__global float *m, __global float *v, int i, float g,
                           float one_minus_b1, float one_minus_b2)
{
    m[i] += (g - m[i]) * one_minus_b1;
    v[i] += (g * g - v[i]) * one_minus_b2;
}

/* Keras Adam: p -= alpha * m / (sqrt(v) + eps). */
#ifdef ADAM_UPDATE
__kernel void adam_update(__global float *restrict p, __global const float *restrict g,
                          __global float *restrict m, __global float *restrict v, int n,
                          __global const float *restrict s, int at)
{
    const float alpha = s[at], one_minus_b1 = s[at + 1], one_minus_b2 = s[at + 2];
    const float eps = s[at + 3], decay = s[at + 4], l2x2 = s[at + 5];
    FOR_ELEMENTS(i, n) {
        const float gi = GRADIENT(i);
        DECAY_WEIGHT(i);
        update_moments(m, v, i, gi, one_minus_b1, one_minus_b2);
        p[i] -= alpha * m[i] / (sqrt(v[i]) + eps);
    }
}
#endif

/* Keras 3 Nadam: m and v as Adam; p -= (c_m*m + c_g*g) / (sqrt(v*c_v) + eps). */
#ifdef NADAM_UPDATE
__kernel void nadam_update(__global float *restrict p, __global const float *restrict g,
                           __global float *restrict m, __global float *restrict v, int n,
                           __global const float *restrict s, int at)
{
    const float c_m = s[at], c_g = s[at + 1], c_v = s[at + 2], one_minus_b1 = s[at + 3];
    const float one_minus_b2 = s[at + 4], eps = s[at + 5], decay = s[at + 6], l2x2 = s[at + 7];
    FOR_ELEMENTS(i, n) {
        const float gi = GRADIENT(i);
        DECAY_WEIGHT(i);
        update_moments(m, v, i, gi, one_minus_b1, one_minus_b2);
        p[i] -= (c_m * m[i] + c_g * gi) / (sqrt(v[i] * c_v) + eps);
    }
}
#endif

/* moving = moving * momentum + stats[index] * (1 - momentum), stats rows of n values. */
#ifdef MOVING_AVERAGE_UPDATE
__kernel void moving_average_update(__global float *restrict moving,
                                    __global const float *restrict stats, int n, int index,
                                    float momentum)
{
    FOR_ELEMENTS(i, n)
        moving[i] = moving[i] * momentum + stats[index * n + i] * (1.0f - momentum);
}
#endif
