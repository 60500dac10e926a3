/* Shared by every kernel family: vector types of a configurable width and the activations.
 *
 * Build options (-D, integers only, set by cnnc/backends/opencl/bind.py):
 *   VW   vector width of a register block's columns (1, 2, 4, 8 or 16)
 *   ACT  activation: 0 linear, 1 relu, 2 leaky_relu, 3 elu, 4 sigmoid, 5 tanh
 */
#ifndef CNNC_COMMON_H
#define CNNC_COMMON_H

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

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

#define ACT_LINEAR 0
#define ACT_RELU 1
#define ACT_LEAKY_RELU 2
#define ACT_ELU 3
#define ACT_SIGMOID 4
#define ACT_TANH 5

/* Keras 3 defaults; cnnc/ir/layers.py states the same constants. */
#define LEAKY_SLOPE 0.2f

/* ACTIVATE(v) works on float and on floatN: every built-in used is overloaded on gentype. */
#ifndef ACT
#define ACTIVATE(v) (v)
#elif ACT == ACT_LINEAR
#define ACTIVATE(v) (v)
#elif ACT == ACT_RELU
#define ACTIVATE(v) max((v), 0.0f)
#elif ACT == ACT_LEAKY_RELU
#define ACTIVATE(v) select(LEAKY_SLOPE * (v), (v), (v) >= 0.0f)
#elif ACT == ACT_ELU
#define ACTIVATE(v) select(expm1(v), (v), (v) > 0.0f)
#elif ACT == ACT_SIGMOID
#define ACTIVATE(v) (1.0f / (1.0f + exp(-(v))))
#elif ACT == ACT_TANH
#define ACTIVATE(v) tanh(v)
#else
#error "unknown ACT"
#endif

#endif
