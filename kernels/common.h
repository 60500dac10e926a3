/* Shared by every kernel family: vector types of a configurable width, the activations, and
 * how a reduction is cut into parts.
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

/* Helper functions (static, inlined into the kernels) take plain pointers, not restrict
 * ones: the kernels' own restrict parameters already tell the compiler that buffers do not
 * overlap, and inlining a helper's restrict parameters leaves calls to
 * llvm.experimental.noalias.scope.decl that Oclgrind cannot run (tests/opencl/test_oclgrind.py).
 */

/* Where part k of `parts` starts in a reduction over n items: the parts split n as evenly as
 * possible (end = the start of part k + 1). The product is taken in 64 bits: n * k may
 * exceed int. */
static int part_begin(int n, int k, int parts)
{
    return (int)(((long)n * k) / parts);
}

#endif
