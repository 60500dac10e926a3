/* In-place state updates: optimizer steps and batch-norm moving averages.
 *
 * The per-step scalars are computed once on the host by the update op's `scalars` rule
 * (cnnc/ir/updates.py) and passed as float arguments each step, so the NumPy and OpenCL
 * backends run the same arithmetic. -D MOMENTUM, NESTEROV select the SGD variant; -D DECAY=1
 * applies decoupled weight decay first, p *= decay (decay = 1 - lr * weight_decay, the last
 * scalar), as Keras 3 and torch.optim.AdamW do before the step.
 * Launch: one dimension over the parameter's elements.
 */
#include "common.h"

#ifndef DECAY
#define DECAY 0
#endif

/* Keras SGD. Without momentum: p -= lr*g. With: v = momentum*v - lr*g; p += v, or
 * p += momentum*v - lr*g with nesterov. */
#ifdef SGD_UPDATE
__kernel void sgd_update(__global float *restrict p, __global const float *restrict g,
                         __global float *restrict velocity, int n, float lr, float momentum,
                         float decay)
{
    FOR_ELEMENTS(i, n) {
#if DECAY
        p[i] *= decay;
#endif
#if MOMENTUM
        const float v = momentum * velocity[i] - lr * g[i];
        velocity[i] = v;
#if NESTEROV
        p[i] += momentum * v - lr * g[i];
#else
        p[i] += v;
#endif
#else
        p[i] -= lr * g[i];
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
                          float alpha, float one_minus_b1, float one_minus_b2, float eps,
                          float decay)
{
    FOR_ELEMENTS(i, n) {
#if DECAY
        p[i] *= decay;
#endif
        update_moments(m, v, i, g[i], one_minus_b1, one_minus_b2);
        p[i] -= alpha * m[i] / (sqrt(v[i]) + eps);
    }
}
#endif

/* Keras 3 Nadam: m and v as Adam; p -= (c_m*m + c_g*g) / (sqrt(v*c_v) + eps). */
#ifdef NADAM_UPDATE
__kernel void nadam_update(__global float *restrict p, __global const float *restrict g,
                           __global float *restrict m, __global float *restrict v, int n,
                           float c_m, float c_g, float c_v, float one_minus_b1,
                           float one_minus_b2, float eps, float decay)
{
    FOR_ELEMENTS(i, n) {
#if DECAY
        p[i] *= decay;
#endif
        update_moments(m, v, i, g[i], one_minus_b1, one_minus_b2);
        p[i] -= (c_m * m[i] + c_g * g[i]) / (sqrt(v[i] * c_v) + eps);
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
