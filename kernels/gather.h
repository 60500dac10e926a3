/* A gathered input (cnnc/ir/gathered.py): the channels of a 1x1 convolution's input read where
 * a chain of ShuffleNetV2 gathers would have copied them from, for a kernel that includes
 * tile.h first and runs its reduction as GEMM register blocks (conv2d.cl's -D GATHERED path,
 * pointwise_avgpool_gathered.cl).
 *
 * -D SOURCES (1 to 4) tensors, x and then the kernel's last arguments (GATHER_PARAM), all of one
 * size but the channels; SEGMENTS (1 to 8) runs, run i reading SEG<i>_LEN channels from
 * SEG<i>_OFF on of each pixel of source SEG<i>_SRC (a tensor of SEG<i>_C channels) against the
 * kernel rows SEG<i>_K0, + SEG<i>_KS, ... of a kernel with FP columns (F, or padded:
 * conv2d.cl). Each run is one reduction
 * loop (gemm_steps) whose B rows are SEG<i>_KS * FP floats apart: the plain 1x1 convolution's
 * loop cut in pieces, no index arithmetic per step.
 */
#ifndef CNNC_GATHER_H
#define CNNC_GATHER_H

#ifndef FP
#define FP F /* the kernel's columns unpadded */
#endif

#if SOURCES == 1
#define GATHER_PARAM
#define GATHER_SOURCES x
#elif SOURCES == 2
#define GATHER_PARAM , __global const float *restrict x1
#define GATHER_SOURCES x, x1
#elif SOURCES == 3
#define GATHER_PARAM , __global const float *restrict x1, __global const float *restrict x2
#define GATHER_SOURCES x, x1, x2
#elif SOURCES == 4
#define GATHER_PARAM , __global const float *restrict x1, __global const float *restrict x2, \
                     __global const float *restrict x3
#define GATHER_SOURCES x, x1, x2, x3
#else
#error "gather.h: SOURCES is 1 to 4"
#endif
#if SEGMENTS < 1 || SEGMENTS > 8
#error "gather.h: SEGMENTS is 1 to 8"
#endif

/* acc += one run: `len` channels from `off` on of the pixels pix[r] (indices over the batch's
 * pixels) of src, a tensor of `channels` channels, against kernel rows from w on, ldb apart. */
static void gather_run(floatV acc[MR][NV], __global const float *src, int channels, int off,
                       int len, const int pix[MR], __global const float *w, int ldb)
{
    __global const float *rows[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        rows[r] = src + pix[r] * channels + off;
    gemm_steps(acc, rows, w, len, ldb);
}

#define GATHER_RUN(i)                                                                          \
    gather_run(acc, sources[SEG##i##_SRC], SEG##i##_C, SEG##i##_OFF, SEG##i##_LEN, pix,        \
               w + SEG##i##_K0 * FP, SEG##i##_KS * FP)

/* acc += the gathered input's pixels pix[r] times columns w.. of the kernel (w points at the
 * block's first column of row 0), every run in turn. */
static void gather_runs(floatV acc[MR][NV], __global const float *const sources[SOURCES],
                        const int pix[MR], __global const float *w)
{
    GATHER_RUN(0);
#if SEGMENTS > 1
    GATHER_RUN(1);
#endif
#if SEGMENTS > 2
    GATHER_RUN(2);
#endif
#if SEGMENTS > 3
    GATHER_RUN(3);
#endif
#if SEGMENTS > 4
    GATHER_RUN(4);
#endif
#if SEGMENTS > 5
    GATHER_RUN(5);
#endif
#if SEGMENTS > 6
    GATHER_RUN(6);
#endif
#if SEGMENTS > 7
    GATHER_RUN(7);
#endif
}

#endif
