/* Shared by every kernel family: vector types of a configurable width, the activations, and
 * how a reduction is cut into parts.
 *
 * Build options (-D, integers only, made by the binders in cnnc/backends/opencl/bind_*.py):
 *   VW        vector width of a register block's columns (1, 2, 4, 8 or 16)
 *   ACT_<NAME> the activation, by name (below)
 *   HAS_BIAS, HAS_RESIDUAL  what a layer's epilogue adds before the activation (below)
 */
#ifndef CNNC_COMMON_H
#define CNNC_COMMON_H

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#include "expmath.h"

/* The elements of an element-wise kernel that work-item get_global_id(0) takes: ELEMS in a row
 * (-D ELEMS, tiling.py's elements_per_item). A CPU driver pays per work-item several times
 * what moving one float costs (pocl: 2.7 GB/s at one element per work-item, 13 GB/s at 8); on
 * a GPU ELEMS is 1, so that neighbouring work-items touch neighbouring addresses. */
#ifndef ELEMS
#define ELEMS 1
#endif
#define FOR_ELEMENTS(i, n)                                                                       \
    for (int i = get_global_id(0) * ELEMS, i##_end = min(i + ELEMS, (n)); i < i##_end; i++)

#ifdef VW
#if VW == 1
typedef float floatV;
#define LOADV(p) (*(p))
#define STOREV(v, p) (*(p) = (v))
#else
typedef CAT(float, VW) floatV;
#define LOADV(p) CAT(vload, VW)(0, (p))
#define STOREV(v, p) CAT(vstore, VW)((v), 0, (p))
#endif
#endif

/* The activation a kernel applies as it stores, chosen by name: the binders pass
 * cnnc/ir/activations.py's `kernel_defines`, that is -D ACT_<NAME>=1 and, for each constant
 * of that activation, -D ACT_<CONSTANT>_BITS=<the float32's bits as an int> (only integers
 * reach build options; as_float() gets the exact float back). No ACT_* define: the identity.
 * ACTIVATE(v) works on float and on floatN: every built-in used is overloaded on gentype.
 * ACTIVATE_GRAD(v, g) is dx from dy = g and v, the activation's output y (its input x for an
 * activation with parameters), for elementwise.cl's activation_grad.
 * tests/ir/test_tables.py checks that every elementwise row of the table has a case in both,
 * and that each of its constants and parameters is read here. */
/* 1 - s for s = 1 / (1 + e): e s where 1 - s would cancel (s > 1/2: silu's gradient at large
 * x, where x (1 - s) still counts), 1 - s where e s would be inf times 0. */
#define SIGMOID_REST(e, s) select((e) * (s), 1.0f - (s), (e) > 1.0f)

/* v / 6 for hard_sigmoid and hard_swish's relu6(x + 3) / 6, as v times 1/6: within an ulp of the
 * quotient, and pocl keeps a division by a constant a division (vdivps, without
 * -cl-fast-relaxed-math). On pocl (2-core Intel Xeon AVX-512) mobilenetv3_mini's layers at
 * batch 256 ran 1.64x (the 3x3 stem of one channel), 1.43x (the 1x1 head, pooled) and
 * 1.03-1.06x (a 1x1 expansion, a 5x5 depthwise) as fast with the product. */
#define HARD_SIXTH(v) ((v) * (1.0f / 6.0f))

#ifdef ACT_SLOPE_BITS
#define ACT_SLOPE as_float(ACT_SLOPE_BITS)
#endif
#ifdef ACT_ALPHA_BITS
#define ACT_ALPHA as_float(ACT_ALPHA_BITS)
#endif
#ifdef ACT_MAX_VALUE_BITS
#define ACT_MAX_VALUE as_float(ACT_MAX_VALUE_BITS)
#endif
#ifdef ACT_THRESHOLD_BITS
#define ACT_THRESHOLD as_float(ACT_THRESHOLD_BITS)
#endif
#ifdef ACT_BETA_BITS
#define ACT_BETA as_float(ACT_BETA_BITS)
#endif

#if defined(ACT_RELU) && defined(ACT_THRESHOLD_BITS)
/* The relu with parameters, as Keras' ReLU layer computes it: x above the threshold (else 0),
 * clipped to [0, max_value] when capped, minus negative_slope * max(threshold - x, 0) when the
 * slope is not 0 (its bits are 0 then). Scalar only: a layer's epilogue applies activations
 * by name, never this one (activations.fused_name). */
static float relu_keras(float v)
{
    float r = v > ACT_THRESHOLD ? v : 0.0f;
#ifdef ACT_MAX_VALUE_BITS
    r = clamp(r, 0.0f, ACT_MAX_VALUE);
#endif
#if ACT_NEGATIVE_SLOPE_BITS
    r -= as_float(ACT_NEGATIVE_SLOPE_BITS) * max(ACT_THRESHOLD - v, 0.0f);
#endif
    return r;
}

/* Its gradient from the input x. */
static float relu_keras_grad(float v, float g)
{
    bool passes = v > ACT_THRESHOLD;
#ifdef ACT_MAX_VALUE_BITS
    passes = passes && v > 0.0f && v < ACT_MAX_VALUE;
#endif
    float scale = passes ? 1.0f : 0.0f;
#if ACT_NEGATIVE_SLOPE_BITS
    scale += v < ACT_THRESHOLD ? as_float(ACT_NEGATIVE_SLOPE_BITS) : 0.0f;
#endif
    return g * scale;
}
#define ACTIVATE(v) relu_keras(v)
#define ACTIVATE_GRAD(v, g) relu_keras_grad((v), (g))
#elif defined(ACT_RELU)
#define ACTIVATE(v) max((v), 0.0f)
#define ACTIVATE_GRAD(v, g) ((v) > 0.0f ? (g) : 0.0f)
#elif defined(ACT_LEAKY_RELU)
#define ACTIVATE(v) select(ACT_SLOPE * (v), (v), (v) >= 0.0f)
#define ACTIVATE_GRAD(v, g) ((v) > 0.0f ? (g) : ACT_SLOPE * (g))
#elif defined(ACT_RELU6)
#define ACTIVATE(v) clamp((v), 0.0f, ACT_MAX_VALUE)
#define ACTIVATE_GRAD(v, g) ((v) > 0.0f && (v) < ACT_MAX_VALUE ? (g) : 0.0f)
#elif defined(ACT_ELU)
#define ACTIVATE(v) select(ACT_ALPHA * expm1_poly(v), (v), (v) > 0.0f)
#define ACTIVATE_GRAD(v, g) ((v) > 0.0f ? (g) : ((v) + ACT_ALPHA) * (g))
#elif defined(ACT_SIGMOID)
#define ACTIVATE(v) (1.0f / (1.0f + exp_normal(-(v))))
#define ACTIVATE_GRAD(v, g) ((g) * (v) * (1.0f - (v)))
#elif defined(ACT_TANH)
#define ACTIVATE(v) tanh_poly(v)
#define ACTIVATE_GRAD(v, g) ((g) * (1.0f - (v) * (v)))
/* Issue 20's activations: ACTIVATE on float or floatN (no ?: there), ACTIVATE_GRAD scalar and
 * from the input x (activations.py's from_input). Written to stay within a few float32 ulps of
 * NumPy's float64 reference: softplus as max(x, 0) + log1p(exp(-|x|)), gelu's Phi(x) as
 * erfc(-x / sqrt 2) / 2 and tanh-gelu's (1 + tanh u) / 2 as sigmoid(2u), so that no 1 + (-1 +
 * tiny) cancels for negative x. */
#elif defined(ACT_SILU)
#define ACTIVATE(v) ((v) / (1.0f + exp_normal(-(v))))
static float silu_grad(float x, float g)
{
    float e = exp_normal(-x);
    float s = 1.0f / (1.0f + e);
    return g * s * (1.0f + x * SIGMOID_REST(e, s));
}
#define ACTIVATE_GRAD(v, g) silu_grad((v), (g))
#elif defined(ACT_HARD_SIGMOID)
/* relu6(x + 3) / 6 as Keras writes it, which is alpha x + beta (ONNX's form, the row's
 * constants) but exact near -3, where alpha x + beta would cancel to a few ulps of 0.5. */
#define ACTIVATE(v) HARD_SIXTH(clamp((v) + 3.0f, 0.0f, 6.0f))
static float hard_sigmoid_grad(float x, float g)
{
    float h = x * ACT_ALPHA + ACT_BETA;
    return h > 0.0f && h < 1.0f ? g * ACT_ALPHA : 0.0f;
}
#define ACTIVATE_GRAD(v, g) hard_sigmoid_grad((v), (g))
#elif defined(ACT_HARD_SWISH)
#define ACTIVATE(v) ((v) * HARD_SIXTH(clamp((v) + 3.0f, 0.0f, 6.0f)))
static float hard_swish_grad(float x, float g)
{
    return x < -3.0f ? 0.0f : x > 3.0f ? g : g * (x * (1.0f / 3.0f) + 0.5f);
}
#define ACTIVATE_GRAD(v, g) hard_swish_grad((v), (g))
#elif defined(ACT_GELU)
/* erfc(z) as Numerical Recipes' erfcc (Chebyshev fit, relative error < 1.2e-7 everywhere), on
 * float or floatN: pocl's built-in erfc takes about 470 ns an element on a Zen 4 core (a gelu
 * layer took 3x its convolution), this one about what exp takes. t = 1 / (1 + |z| / 2). Its
 * polynomial in t by Estrin's scheme (in pairs, then t^2 and t^4): Horner's chain of nine
 * dependent multiply-adds made gelu 1.06x slower (pocl, Zen 3, float8). */
#define ERFC_POLY_OF(F)                                                                        \
    static __attribute__((overloadable)) F erfc_poly(F t)                                      \
    {                                                                                          \
        const F t2 = t * t, t4 = t2 * t2;                                                      \
        const F p01 = -1.26551223f + t * 1.00002368f, p23 = 0.37409196f + t * 0.09678418f;    \
        const F p45 = -0.18628806f + t * 0.27886807f, p67 = -1.13520398f + t * 1.48851587f;   \
        const F p89 = -0.82215223f + t * 0.17087277f;                                          \
        return (p01 + t2 * p23) + t4 * ((p45 + t2 * p67) + t4 * p89);                          \
    }
ERFC_POLY_OF(float)
ERFC_POLY_OF(float2)
ERFC_POLY_OF(float4)
ERFC_POLY_OF(float8)
ERFC_POLY_OF(float16)
#define ERFC_POLY(t) erfc_poly(t)
#define ERFC_ABS(a, t) ((t) * exp_normal(-(a) * (a) + ERFC_POLY(t)))
#define ERFC_T(z) (1.0f / (1.0f + 0.5f * fabs(z)))
#define ERFC(z) select(2.0f - ERFC_ABS(fabs(z), ERFC_T(z)), ERFC_ABS(fabs(z), ERFC_T(z)),      \
                       (z) >= 0.0f)
#define ACTIVATE(v) ((v) * (0.5f * ERFC((v) * -M_SQRT1_2_F)))
static float gelu_grad(float x, float g)
{
    /* Phi(x) + x phi(x); 1 / sqrt(2 pi) = M_2_SQRTPI_F * M_SQRT1_2_F / 2 */
    float pdf = exp_normal(-0.5f * x * x) * (0.5f * M_2_SQRTPI_F * M_SQRT1_2_F);
    return g * (0.5f * ERFC(x * -M_SQRT1_2_F) + x * pdf);
}
#define ACTIVATE_GRAD(v, g) gelu_grad((v), (g))
#elif defined(ACT_GELU_TANH)
/* k = sqrt(2 / pi) = M_2_SQRTPI_F * M_SQRT1_2_F, c = 0.044715 */
#define GELU_K (M_2_SQRTPI_F * M_SQRT1_2_F)
#define ACTIVATE(v)                                                                     \
    ((v) / (1.0f + exp_normal(-2.0f * GELU_K * ((v) + 0.044715f * (v) * (v) * (v)))))
static float gelu_tanh_grad(float x, float g)
{
    float e = exp_normal(-2.0f * GELU_K * (x + 0.044715f * x * x * x));
    float s = 1.0f / (1.0f + e);
    return g * (s + 2.0f * x * s * SIGMOID_REST(e, s) * GELU_K *
                     (1.0f + 3.0f * 0.044715f * x * x));
}
#define ACTIVATE_GRAD(v, g) gelu_tanh_grad((v), (g))
#elif defined(ACT_SOFTPLUS)
#define ACTIVATE(v) (fmax((v), 0.0f) + log1p_unit(exp_normal(-fabs(v))))
#define ACTIVATE_GRAD(v, g) ((g) / (1.0f + exp_normal(-(v))))
#elif defined(ACT_MISH)
/* tanh(softplus(x)) = w / (w + 2) with n = e^x, w = n (n + 2): one exp, where tanh and log1p
 * of pocl took ten times a convolution's time. Past x = 20, w / (w + 2) is 1 in float32 (and
 * n (n + 2) would overflow past 44). 1 - t = 2 / (w + 2) without cancellation. */
#define MISH_W(v) (exp_poly(fmin((v), 20.0f)) * (exp_poly(fmin((v), 20.0f)) + 2.0f))
#define ACTIVATE(v) ((v) * (MISH_W(v) / (MISH_W(v) + 2.0f)))
static float mish_grad(float x, float g)
{
    float n = exp_poly(fmin(x, 20.0f));
    float w = n * (n + 2.0f);
    float t = w / (w + 2.0f);
    float sigmoid = n / (1.0f + n);
    return g * (t + x * sigmoid * (2.0f / (w + 2.0f)) * (1.0f + t));
}
#define ACTIVATE_GRAD(v, g) mish_grad((v), (g))
#else /* ACT_LINEAR, or none */
#define ACTIVATE(v) (v)
#define ACTIVATE_GRAD(v, g) (g)
#endif

/* A residual added as a layer's output is stored (-D HAS_RESIDUAL=1: the residual ops of
 * cnnc/ir/residual.py, a residual block's add fused into the convolution before it). The kernels
 * that store a layer's output (conv2d_forward, matmul, winograd_output and winograd_fused,
 * batchnorm_train) end their parameter list
 * with RESIDUAL_PARAM, the tensor added (of the output's shape), which the binder
 * (bind_residual.py) appends as the last argument only then, and hand RESIDUAL to `epilogue`. */
#if HAS_RESIDUAL || HAS_ACT_GRAD
#define RESIDUAL_PARAM , __global const float *restrict residual
#define RESIDUAL residual
#else
#define RESIDUAL_PARAM
#define RESIDUAL 0
#endif

/* Helper functions (static, inlined into the kernels) take plain pointers, not restrict
 * ones: the kernels' own restrict parameters already tell the compiler that buffers do not
 * overlap, and inlining a helper's restrict parameters leaves calls to
 * llvm.experimental.noalias.scope.decl that Oclgrind cannot run (tests/opencl/test_oclgrind.py).
 */

#if HAS_ACT_GRAD && HAS_RESIDUAL
#error "HAS_ACT_GRAD takes the residual's argument: a kernel cannot have both"
#endif
#ifdef VW
/* ACTIVATE_GRAD(x[lane], g[lane]) on vectors of VW lanes (activate_grad_at: x read at
 * v + at): elementwise.cl's activation_grad, batchnorm.cl's fused gradients, and
 * with -D HAS_ACT_GRAD=1 (cnnc/backends/opencl/bind_act_grad.py) the store of a kernel whose
 * value is the dy of an activation, whose derivative is then applied as it is stored (no
 * activation of the kernel's own: gradient kernels have none); `v` (the activation's y, or its
 * input x) comes in the residual's argument, read at the same flat index. ACTIVATE_GRAD is
 * scalar (the issue-20 ones branch), so other activations take a vector apart lane by lane. */
static floatV activate_grad_of(floatV x, floatV g)
{
    /* The smooth and hard issue-20 activations on whole vectors (the formulas of their
     * ACTIVATE_GRAD above): lane by lane, each exp would be a scalar call inside a GEMM's
     * epilogue. */
#if defined(ACT_SILU)
    const floatV e = exp_normal(-x);
    const floatV s = 1.0f / (1.0f + e);
    return g * s * (1.0f + x * SIGMOID_REST(e, s));
#elif defined(ACT_GELU)
    const floatV pdf = exp_normal(-0.5f * x * x) * (0.5f * M_2_SQRTPI_F * M_SQRT1_2_F);
    return g * (0.5f * ERFC(x * -M_SQRT1_2_F) + x * pdf);
#elif defined(ACT_GELU_TANH)
    const floatV e = exp_normal(-2.0f * GELU_K * (x + 0.044715f * x * x * x));
    const floatV s = 1.0f / (1.0f + e);
    return g * (s + 2.0f * x * s * SIGMOID_REST(e, s) * GELU_K *
                     (1.0f + 3.0f * 0.044715f * x * x));
#elif defined(ACT_SOFTPLUS)
    return g / (1.0f + exp_normal(-x));
#elif defined(ACT_MISH)
    const floatV n = exp_poly(fmin(x, 20.0f));
    const floatV w = n * (n + 2.0f);
    const floatV t = w / (w + 2.0f);
    return g * (t + x * (n / (1.0f + n)) * (2.0f / (w + 2.0f)) * (1.0f + t));
#elif defined(ACT_HARD_SWISH)
    return select(select(g * (x * (1.0f / 3.0f) + 0.5f), g, x > 3.0f), (floatV)(0.0f),
                  x < -3.0f);
#elif defined(ACT_HARD_SIGMOID)
    const floatV h = x * ACT_ALPHA + ACT_BETA;
    return select((floatV)(0.0f), g * ACT_ALPHA, h > 0.0f && h < 1.0f);
#elif VW > 1 && defined(ACT_RELU) && !defined(ACT_THRESHOLD_BITS)
    /* The ReLUs without Keras' parameters, ELU, sigmoid and tanh (their ACTIVATE_GRAD above)
     * as selects: lane by lane through private arrays, batchnorm.cl's fused gradient sums ran
     * at 0.65x the speed of these (relu, 14x14x48 at batch 128, pocl on a Zen 3). */
    return select((floatV)(0.0f), g, x > 0.0f);
#elif VW > 1 && defined(ACT_RELU6)
    return select((floatV)(0.0f), g, x > 0.0f && x < ACT_MAX_VALUE);
#elif VW > 1 && defined(ACT_LEAKY_RELU)
    return select(ACT_SLOPE * g, g, x > 0.0f);
#elif VW > 1 && defined(ACT_ELU)
    return select((x + ACT_ALPHA) * g, g, x > 0.0f);
#elif VW > 1 && (defined(ACT_SIGMOID) || defined(ACT_TANH))
    return ACTIVATE_GRAD(x, g);
#elif VW == 1
    return ACTIVATE_GRAD(x, g);
#else
    float xs[VW], lanes[VW];
    CAT(vstore, VW)(x, 0, xs);
    CAT(vstore, VW)(g, 0, lanes);
#pragma unroll
    for (int i = 0; i < VW; i++)
        lanes[i] = ACTIVATE_GRAD(xs[i], lanes[i]);
    return CAT(vload, VW)(0, lanes);
#endif
}

/* activate_grad_of the VW values at v + at. */
static floatV activate_grad_at(__global const float *v, int at, floatV g)
{
    return activate_grad_of(LOADV(v + at), g);
}
#endif

#ifdef VW
/* The epilogue of every store of a layer's output, in one place: value + bias[col] (-D
 * HAS_BIAS=1) + residual[at] (-D HAS_RESIDUAL=1: the output's own element `at` of a tensor
 * shaped like it), then ACTIVATE; `col` is the output channel, `at` the flat index stored. */
static floatV epilogue(floatV value, __global const float *bias, __global const float *residual,
                       int col, int at)
{
#if HAS_BIAS
    value += LOADV(bias + col);
#endif
#if HAS_RESIDUAL
    value += LOADV(residual + at);
#endif
#if HAS_ACT_GRAD
    return activate_grad_at(residual, at, value);
#else
    return ACTIVATE(value);
#endif
}
#endif

/* epilogue on one lane: the value of output channel `col` stored at flat index `at` (the
 * part of a vector that reaches past a row's last channel: conv2d.cl's padded columns). */
static float epilogue_lane(float value, __global const float *bias,
                           __global const float *residual, int col, int at)
{
#if HAS_BIAS
    value += bias[col];
#endif
#if HAS_RESIDUAL
    value += residual[at];
#endif
#if HAS_ACT_GRAD
    return ACTIVATE_GRAD(residual[at], value);
#else
    return ACTIVATE(value);
#endif
}

/* Where part k of `parts` starts in a reduction over n items: the parts split n as evenly as
 * possible (end = the start of part k + 1). The product is taken in 64 bits: n * k may
 * exceed int. */
static int part_begin(int n, int k, int parts)
{
    return (int)(((long)n * k) / parts);
}

#endif
