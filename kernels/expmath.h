/* exp, expm1, tanh and log1p for the smooth activations (common.h's ACTIVATE), on float and
 * on float2 ... float16 (overloaded), as inline, branch-free polynomials.
 *
 * Why not the built-ins: pocl's exp is a call into its library for every element (each lane
 * of a vector apart), and on a Zen 3 it cost more than the convolution whose epilogue applied
 * it (efficientnet_mini's SiLU layers). These are a few dozen vector instructions an element,
 * inlined into the kernel, in the style of Cephes' expf and onnxruntime's MLAS.
 *
 * Accuracy (tests/opencl/test_expmath.py measures it against float64 NumPy): exp within 2
 * float32 ulps over the whole range, subnormal results included (they are rounded once, as
 * NumPy's float32 exp rounds them: exp(-104) is 0, exp(88.73) inf); expm1 and tanh within a
 * few ulps relative, also near 0 where exp(x) - 1 would cancel; NaN in, NaN out.
 */
#ifndef CNNC_EXPMATH_H
#define CNNC_EXPMATH_H

#define EXPMATH_OVERLOAD static __attribute__((overloadable))

/* Past these, float32 exp is inf and 0 whatever the polynomial says; inside them, the scale
 * 2^n below stays within [2^-150, 2^128], which two normal factors can hold. */
#define EXP_HI 89.0f
#define EXP_LO -104.0f
/* 1.5 * 2^23: adding it rounds x log2(e) to an integer held in the float's low bits. */
#define EXP_SHIFTER 12582912.0f
/* exp_normal's range: 2^n stays a normal float, n in [-126, 127]. */
#define EXP_NORMAL_HI 88.3f
#define EXP_NORMAL_LO -87.3f
/* ln 2 in two parts (Cephes): n * LN2_HI is exact for |n| < 2^15, so r = x - n ln 2 keeps
 * its low bits. */
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f

/* e^r - 1 for |r| <= ln(2) / 2 (and a little more): r + r^2 P(r), Cephes expf's minimax P
 * (expm1's: its relative accuracy near 0 rests on r coming out exact). */
#define EXPM1_REDUCED(r)                                                                       \
    ((r) + (r) * (r) * (5.0000001201e-1f + (r) * (1.6666665459e-1f + (r) * (4.1665795894e-2f + \
     (r) * (8.3334519073e-3f + (r) * (1.3981999507e-3f + (r) * 1.9875691500e-4f))))))

/* e^r for |r| <= ln(2) / 2 (and 2% more): 1 + r + r^2 Q(r), Q of degree 4 fitted to the
 * relative error of e^r (max 6e-9 with the float32 coefficients, a tenth of an ulp), in six
 * multiply-adds (Cephes' expm1 form above takes eight). */
#define EXP_REDUCED(r)                                                                         \
    (1.0f + (r) * (1.0f + (r) * (4.999999404e-1f + (r) * (1.666650921e-1f +                   \
     (r) * (4.166853055e-2f + (r) * (8.370141499e-3f + (r) * 1.381164184e-3f))))))

/* The comparisons select NaN through (a NaN compares false): fmin/fmax would replace it. */
#define EXP_CLAMP(F, x) select(select((x), (F)(EXP_HI), (x) > EXP_HI), (F)(EXP_LO), (x) < EXP_LO)

/* x = n ln 2 + r: n (as a float, `t`'s low bits hold it as an integer) and r. (Written with
 * `shifter` so that exp_normal can fold the exponent's bias into it.) */
#define EXP_REDUCE_BY(F, x, t, n, r, shifter)                                                  \
    const F t = (x) * M_LOG2E_F + (shifter);                                                   \
    const F n = t - (shifter);                                                                 \
    const F r = ((x) - n * LN2_HI) - n * LN2_LO
#define EXP_REDUCE(F, x, t, n, r) EXP_REDUCE_BY(F, x, t, n, r, EXP_SHIFTER)

#define EXPMATH_FUNCTIONS(F, I)                                                                \
    /* 2^k for an integer k in [-126, 127], from its exponent bits. */                         \
    EXPMATH_OVERLOAD F pow2i(I k)                                                              \
    {                                                                                          \
        return CAT(as_, F)((k + 127) << 23);                                                   \
    }                                                                                          \
                                                                                               \
    EXPMATH_OVERLOAD F exp_poly(F x)                                                           \
    {                                                                                          \
        x = EXP_CLAMP(F, x);                                                                   \
        EXP_REDUCE(F, x, t, n, r);                                                             \
        /* n in [-150, 129]: 2^n as two factors, each a normal float; (1 + q) 2^k1 is exact, \
         * so the product rounds once, subnormal or overflowing results included. */          \
        const I k = CAT(as_, I)(t) - as_int(EXP_SHIFTER);                                      \
        const I k1 = k >> 1;                                                                   \
        return (EXP_REDUCED(r) * pow2i(k1)) * pow2i(k - k1);                                   \
    }                                                                                          \
                                                                                               \
    /* exp(x), but never below 2^-126 (x clamped to -87.3 from below, no subnormals) and inf  \
     * from 88.3 on (where exp is up to 3.4e38): half exp_poly's scaling work, for the        \
     * activations, whose formulas make the same of inf as of 3e38 (1 / (1 + e) is 0 within  \
     * 1e-38 either way) and differ only in far tails, below 1e-36, where the truth is a      \
     * subnormal or 0. The shifter carries the exponent's bias: t's low bits are n + 127,     \
     * and shifted left by 23 they are 2^n's bits (the shifter's own bits shift out).         \
     */                                                                                       \
    EXPMATH_OVERLOAD F exp_normal(F x)                                                         \
    {                                                                                          \
        const F c = select(x, (F)(EXP_NORMAL_LO), x < EXP_NORMAL_LO);                          \
        EXP_REDUCE_BY(F, c, t, n, r, EXP_SHIFTER + 127.0f);                                    \
        const F e = EXP_REDUCED(r) * CAT(as_, F)(CAT(as_, I)(t) << 23);                        \
        return select(e, (F)(INFINITY), x > EXP_NORMAL_HI);                                    \
    }                                                                                          \
                                                                                               \
    /* e^x - 1 = 2^n q + (2^n - 1) with q = e^r - 1: exact where exp(x) - 1 would cancel (n = \
     * 0 gives q itself); past n = 24 the 1 no longer matters and exp's own scaling serves. */ \
    EXPMATH_OVERLOAD F expm1_poly(F x)                                                         \
    {                                                                                          \
        x = EXP_CLAMP(F, x);                                                                   \
        EXP_REDUCE(F, x, t, n, r);                                                             \
        const F q = EXPM1_REDUCED(r);                                                          \
        const I k = CAT(as_, I)(t) - as_int(EXP_SHIFTER);                                      \
        /* Bounds of type I: Oclgrind 21.10 gets clamp(intN, int, int) wrong. */               \
        const F p = pow2i(clamp(k, (I)(-64), (I)(64)));                                        \
        const I k1 = k >> 1;                                                                   \
        const F big = ((1.0f + q) * pow2i(k1)) * pow2i(k - k1) - 1.0f;                         \
        return select(p * q + (p - 1.0f), big, k > 24);                                        \
    }                                                                                          \
                                                                                               \
    /* tanh |x| = -m / (2 + m) with m = expm1(-2 |x|) in (-1, 0]: no overflow, and relative  \
     * accuracy near 0 from expm1's. */                                                        \
    EXPMATH_OVERLOAD F tanh_poly(F x)                                                          \
    {                                                                                          \
        const F m = expm1_poly(-2.0f * fabs(x));                                               \
        return copysign(-m / (2.0f + m), x);                                                   \
    }                                                                                          \
                                                                                               \
    /* log(1 + u) for u in [0, 1] (softplus's log1p(exp(-|x|))): 2 atanh(s), s = u / (2 + u) \
     * <= 1/3, by its series to s^13 (the rest is below 2e-8 relative). */                    \
    EXPMATH_OVERLOAD F log1p_unit(F u)                                                         \
    {                                                                                          \
        const F s = u / (2.0f + u);                                                            \
        const F z = s * s;                                                                     \
        const F series = 1.0f + z * (1.0f / 3 + z * (1.0f / 5 + z * (1.0f / 7 + z * (1.0f / 9 \
                         + z * (1.0f / 11 + z * (1.0f / 13))))));                              \
        return 2.0f * s * series;                                                              \
    }

EXPMATH_FUNCTIONS(float, int)
EXPMATH_FUNCTIONS(float2, int2)
EXPMATH_FUNCTIONS(float3, int3)
EXPMATH_FUNCTIONS(float4, int4)
EXPMATH_FUNCTIONS(float8, int8)
EXPMATH_FUNCTIONS(float16, int16)

#endif
