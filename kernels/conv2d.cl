/* 2-D convolution (NHWC activations, HWIO kernels) as implicit GEMMs, register-blocked (tile.h).
 *
 * Each work-item computes an MR x NR block of a GEMM's output, reading the "A" operand straight
 * from the activation tensor at the right window offsets (no im2col copy). A window tap that
 * falls into the zero padding reads from `zeros`, a buffer of zeros at least as long as the inner
 * loop, so the inner loop has no branch.
 *
 * Geometry (-D): H W C input, OH OW F output, CG = C / groups, FG = F / groups, KH KW kernel,
 *   SH SW strides, DH DW dilation, PT PL padding before (top, left). The batch size comes as the
 *   argument `batch`, so one program serves every batch size.
 * Tiling (-D): MR rows per work-item, VW, NV. Epilogue (-D): HAS_BIAS, HAS_RESIDUAL, ACT_<NAME>
 *   (see common.h).
 * Gated input (-D GATED=1 GS0 GS1 GS2 GS3, forward and im2col): the input is read as
 *   x * gate, the gate (a squeeze-excite scale, cnnc/ir/gated.py) read at n*GS0 + ih*GS1 +
 *   iw*GS2 + c*GS3 (0 on the axes it is broadcast along), passed as the last argument.
 * Launch: dim 0 = row blocks (MR rows: the large count), dim 1 = column blocks (NR columns);
 *   dim 2 of the kernel gradient = parts of the reduction (its global size).
 * Gathered input (-D GATHERED=1 SOURCES SEGMENTS SEG<i>_SRC SEG<i>_C SEG<i>_OFF SEG<i>_LEN
 *   SEG<i>_K0 SEG<i>_KS, forward of a 1x1 stride-1 ungrouped convolution, cnnc/ir/gathered.py):
 *   the input's channels are not one tensor but SEGMENTS runs over SOURCES tensors (x, then
 *   the last arguments): run i reads channels SEG<i>_OFF.. (SEG<i>_LEN of them) of source
 *   SEG<i>_SRC, a tensor of SEG<i>_C channels, against kernel rows SEG<i>_K0, + SEG<i>_KS, ...
 *   Each run is one reduction loop (gemm_steps) with B's row stride SEG<i>_KS * F: the loop
 *   of the plain 1x1 convolution cut in pieces, no index arithmetic per step.
 * Concatenated input (-D CONCAT=1 C0 UP0H UP0W UP1H UP1W, forward of an ungrouped convolution
 *   on the register-blocked path, bind_conv_concat.py): the input is the channel concatenation
 *   of x (channels 0..C0-1) and x1 (the other C - C0, the argument after x), part i stored at
 *   H / UPiH x W / UPiW and read at (h / UPiH, w / UPiW): nearest upsampling by those factors.
 *   Each tap's reduction runs over one part and then the other, no index arithmetic per step.
 * GPUs (-D LOCAL_TILE=1 TX TY KT, groups == 1): forward and input gradient stage their operands
 *   in local memory (tile.h); launch one work-group of TX * TY work-items per BM x BN tile.
 */
#include "tile.h"

/* Reduction parts of the forward pass (-D SPLIT=P <= CG, the plain register-blocked path):
 * launch dim 2 = P parts, part p summing channels p*CG/P..(p+1)*CG/P - 1 of every tap into its
 * own M x F slice of the `y` argument (a workspace of P * M * F floats, no epilogue), then
 * conv2d_parts_finish adds the parts up in order with the epilogue. A batch-1 layer of a few
 * pixels has too few register blocks for the cores, and each part reads 1/P of the weights. */
#ifndef SPLIT
#define SPLIT 1
#endif
#if defined(CONV2D_FORWARD) && SPLIT > 1 && (LOCAL_TILE || GATED || GATHERED || CONCAT \
                                             || SPLIT > CG)
#error "SPLIT: the plain register-blocked path, at most one part per channel"
#endif

#if LOCAL_TILE && CG != C
#error "LOCAL_TILE needs groups == 1"
#endif

#if CONCAT
#if LOCAL_TILE || GATED || GATHERED || CG != C
#error "CONCAT: an ungrouped convolution on the register-blocked path"
#endif
#define CONCAT_PARAM , __global const float *restrict x1
#define C1 (C - C0)
#else
#define CONCAT_PARAM
#endif

#if GATED
#define GATE_PARAM , __global const float *restrict gate
#else
#define GATE_PARAM
#endif

#if GATHERED
#if LOCAL_TILE || GATED || KH != 1 || KW != 1 || SH != 1 || SW != 1 || CG != C
#error "GATHERED: a 1x1 stride-1 ungrouped convolution on the register-blocked path"
#endif
#include "gather.h" /* GATHER_PARAM, GATHER_SOURCES, gather_runs */
#else
#define GATHER_PARAM
#endif

/* y[n, oh, ow, f] = act(bias[f] + sum x[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, g*CG + c]
 *                                    * w[kh, kw, c, f]),  g = f / FG.
 * GEMM rows m = (n, oh, ow), columns f, reduction (kh, kw, c). */
#ifdef CONV2D_FORWARD
/* A 1x1 stride-1 convolution without padding or groups reads its input as the M x C matrix it
 * is: row m at x + m * C, with no pixel coordinates (a division and a remainder by the map's
 * sizes per row) and no padding test. On pocl (2-core Intel Xeon AVX-512) that setup, per
 * work-item, took about as long as a 16-channel reduction: mobilenetv3_mini's 1x1 layers ran
 * 1.11x (14x14x16 -> 48, 7x7x24 -> 72) and 1.26x (the gated 14x14x16 -> 16) as fast without it. */
#if KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0 && OH == H && OW == W \
    && CG == C
#define POINTWISE_ROWS 1
#else
#define POINTWISE_ROWS 0
#endif

/* Runs of taps (forward, the plain register-blocked path, DW == 1, ungrouped, one part): the
 * taps kw = 0..KW-1 of one kernel row read KW consecutive input pixels, KW * C consecutive
 * floats, against KW * C consecutive kernel rows (HWIO): one reduction of KW * C steps with one
 * pointer per row instead of KW reductions of C steps, each after its own pointer and padding
 * selects per row. Those selects, spilled, were a third of the instructions of resnet_mini's
 * 3x3 stride-2 layer (16 channels: 16 steps per tap); with the runs that layer alone took
 * 0.85x the time (batch 256, pocl 3.1, Intel Xeon AVX-512). The taps some row of the block has
 * in the padding still go tap by tap. -D TAP_RUNS=0 turns the runs off: benchmarks/tap_runs.py
 * times whole passes both ways. */
#ifndef TAP_RUNS
#define TAP_RUNS (DW == 1 && KW > 1 && CG == C && SPLIT == 1)
#endif

/* Padded columns (-D FP > F, forward, the register-blocked path of an ungrouped convolution in
 * one part): w is read as a (KH*KW*C) x FP matrix whose columns F.. are zeros (the binder pads
 * the kernel once, bind_layers.py), so that blocks of the widest vectors cover F columns that
 * they do not divide: 24 or 72 filters on AVX-512 as float16 blocks, not float8 ones at half
 * the lanes per FMA. store_output_padded leaves the columns past F out. */
#ifndef FP
#define FP F
#endif
#if FP != F && (LOCAL_TILE || SPLIT > 1 || CG != C || FP % NR || FP < F)
#error "FP: the padded kernel's columns, a multiple of the block's (NR) from F on"
#endif

#if FP != F
/* store_output for a block that may reach past column F: whole vectors before F as usual,
 * the one vector holding column F - 1 lane by lane (F % VW of them), none after it. */
static void store_output_padded(floatV acc[MR][NV], __global const float *bias,
                                __global const float *residual, __global float *out, int m0,
                                int n0, int rows)
{
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (m0 + r >= rows)
            return;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            const int col = n0 + v * VW, at = (m0 + r) * F + col;
            if (col + VW <= F) {
                STOREV(epilogue(acc[r][v], bias, residual, col, at), out + at);
            } else if (col < F) {
                float lanes[VW];
                STOREV(acc[r][v], lanes);
#pragma unroll
                for (int i = 0; i < F % VW; i++)
                    out[at + i] = epilogue_lane(lanes[i], bias, residual, col + i, at + i);
            }
        }
    }
}
#endif

#if SPLIT > 1
/* A part's block as it is summed (no epilogue: conv2d_parts_finish adds it after the sum). */
static void store_part(floatV acc[MR][NV], __global float *out, int m0, int n0, int rows,
                       int cols)
{
    if (n0 >= cols)
        return;
#pragma unroll
    for (int r = 0; r < MR; r++) {
        if (m0 + r < rows) {
#pragma unroll
            for (int v = 0; v < NV; v++)
                STOREV(acc[r][v], out + (m0 + r) * cols + n0 + v * VW);
        }
    }
}
#endif

#if LOCAL_TILE
/* Element (m, k) of the forward GEMM's A: m = (n, oh, ow), k = (kh, kw, c). */
static float forward_input(__global const float *x, int m, int k, int M)
{
    if (m >= M || k >= KH * KW * C)
        return 0.0f;
    const int n = m / (OH * OW), rem = m % (OH * OW), tap = k / C;
    const int ih = (rem / OW) * SH + (tap / KW) * DH - PT;
    const int iw = (rem % OW) * SW + (tap % KW) * DW - PL;
    const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
    return inside ? x[((n * H + ih) * W + iw) * C + k % C] : 0.0f;
}

#define KDIM (KH * KW * C)
#if GATED
/* The gate's factor for element (m, k) of A (1 outside: A is 0 there). */
static float forward_gate(__global const float *gate, int m, int k, int M)
{
    if (m >= M || k >= KH * KW * C)
        return 1.0f;
    const int n = m / (OH * OW), rem = m % (OH * OW), tap = k / C;
    const int ih = (rem / OW) * SH + (tap / KW) * DH - PT;
    const int iw = (rem % OW) * SW + (tap % KW) * DW - PL;
    const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
    return inside ? gate[n * GS0 + ih * GS1 + iw * GS2 + (k % C) * GS3] : 1.0f;
}
#define A_ELEM(m, k) (forward_input(x, (m), (k), M) * forward_gate(gate, (m), (k), M))
#else
#define A_ELEM(m, k) forward_input(x, (m), (k), M)
#endif
#define B_ELEM(k, n) ((k) < KDIM && (n) < F ? w[(k) * F + (n)] : 0.0f)
#endif

#if GATED && !LOCAL_TILE
/* gemm_steps on x * gate: row r's gate values start at g_rows[r], one per CG/GS3 step. */
static void gated_steps_by_row(floatV acc[MR][NV], __global const float *a_rows[MR],
                               __global const float *g_rows[MR], __global const float *b,
                               int len, int ldb)
{
    for (int k = 0; k < len; k++) {
        floatV bk[NV];
        float ak[MR];
        load_row(bk, b + k * ldb);
#pragma unroll
        for (int r = 0; r < MR; r++)
            ak[r] = a_rows[r][k] * g_rows[r][k * GS3];
        rank1_update(acc, ak, bk);
    }
}

/* gemm_steps on x * gate where every row of the block has the same gate values (one example,
 * a gate constant over the pixels: squeeze-excite): the gate scales B's row instead, NV
 * vector multiplies a step instead of MR scalar ones. */
static void gated_steps_shared(floatV acc[MR][NV], __global const float *a_rows[MR],
                               __global const float *g, __global const float *b, int len,
                               int ldb)
{
    for (int k = 0; k < len; k++) {
        floatV bk[NV];
        float ak[MR];
        load_row(bk, b + k * ldb);
        const float gk = g[k * GS3];
#pragma unroll
        for (int v = 0; v < NV; v++)
            bk[v] *= gk;
#pragma unroll
        for (int r = 0; r < MR; r++)
            ak[r] = a_rows[r][k];
        rank1_update(acc, ak, bk);
    }
}

/* conv2d_forward's taps on x * gate (the non-tiled path). */
static void gated_taps(floatV acc[MR][NV], __global const float *x, __global const float *gate,
                       __global const float *w, __global const float *zeros, int m0, int n0,
                       int M)
{
#if POINTWISE_ROWS && GS1 == 0 && GS2 == 0
    /* gated per example (squeeze-excite): row m's gate values start at gate + n * GS0 for its
     * example n = m / (OH * OW) */
    __global const float *src[MR];
    __global const float *gsrc[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int m = min(m0 + r, M - 1); /* rows past the end repeat the last; never stored */
        src[r] = x + m * C;
        gsrc[r] = gate + (m / (OH * OW)) * GS0;
    }
    if (gsrc[0] == gsrc[MR - 1])
        gated_steps_shared(acc, src, gsrc[0], w + n0, C, FP);
    else
        gated_steps_by_row(acc, src, gsrc, w + n0, C, FP);
#else
    const int g = n0 / FG;
    int ih0[MR], iw0[MR], base[MR], gbase[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int m = min(m0 + r, M - 1);
        const int n = m / (OH * OW), rem = m % (OH * OW);
        ih0[r] = (rem / OW) * SH - PT;
        iw0[r] = (rem % OW) * SW - PL;
        base[r] = n * (H * W * C) + g * CG;
        gbase[r] = n * GS0 + g * CG * GS3;
    }
#if GS1 == 0 && GS2 == 0
    const bool shared = gbase[0] == gbase[MR - 1];
#else
    const bool shared = false;
#endif
    for (int kh = 0; kh < KH; kh++) {
        for (int kw = 0; kw < KW; kw++) {
            __global const float *src[MR];
            __global const float *gsrc[MR];
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int ih = ih0[r] + kh * DH, iw = iw0[r] + kw * DW;
                const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                src[r] = inside ? x + base[r] + (ih * W + iw) * C : zeros;
                gsrc[r] = inside ? gate + gbase[r] + ih * GS1 + iw * GS2 : zeros;
            }
            __global const float *wk = w + (kh * KW + kw) * CG * FP + n0;
            if (shared)
                gated_steps_shared(acc, src, gate + gbase[0], wk, CG, FP);
            else
                gated_steps_by_row(acc, src, gsrc, wk, CG, FP);
        }
    }
#endif
}
#endif


__kernel void conv2d_forward(__global const float *restrict x CONCAT_PARAM,
                             __global const float *restrict w,
                             __global const float *restrict bias,
                             __global const float *restrict zeros, __global float *restrict y,
                             int batch RESIDUAL_PARAM GATE_PARAM GATHER_PARAM)
{
    const int M = batch * OH * OW;
    const int m0 = BLOCK_ROW(), n0 = BLOCK_COL();
    floatV acc[MR][NV];
    zero_block(acc);
#if LOCAL_TILE
    TILED_GEMM(acc)
#elif GATED
    gated_taps(acc, x, gate, w, zeros, m0, n0, M);
#elif GATHERED
    __global const float *sources[SOURCES] = {GATHER_SOURCES};
    int pix[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        pix[r] = min(m0 + r, M - 1); /* rows past the end repeat the last; never stored */
    gather_runs(acc, sources, pix, w + n0);
#elif CONCAT
    int ih0[MR], iw0[MR], n_[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int m = min(m0 + r, M - 1); /* rows past the end repeat the last; never stored */
        const int rem = m % (OH * OW);
        n_[r] = m / (OH * OW);
        ih0[r] = (rem / OW) * SH - PT;
        iw0[r] = (rem % OW) * SW - PL;
    }
    for (int kh = 0; kh < KH; kh++) {
        for (int kw = 0; kw < KW; kw++) {
            __global const float *src0[MR], *src1[MR];
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int ih = ih0[r] + kh * DH, iw = iw0[r] + kw * DW;
                const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                src0[r] = inside ? x + ((n_[r] * (H / UP0H) + ih / UP0H) * (W / UP0W)
                                        + iw / UP0W) * C0 : zeros;
                src1[r] = inside ? x1 + ((n_[r] * (H / UP1H) + ih / UP1H) * (W / UP1W)
                                         + iw / UP1W) * C1 : zeros;
            }
            __global const float *wk = w + (kh * KW + kw) * C * FP + n0;
            gemm_steps(acc, src0, wk, C0, FP);
            gemm_steps(acc, src1, wk + C0 * FP, C1, FP);
        }
    }
#else
    const int g = n0 / FG;
#if SPLIT > 1
    /* part p of SPLIT takes channels c_begin.. (c_len of them) of every tap */
    const int part = (int)get_global_id(2);
    const int c_begin = part * CG / SPLIT, c_len = (part + 1) * CG / SPLIT - c_begin;
#else
#define c_begin 0
#define c_len CG
#endif
#if POINTWISE_ROWS
    __global const float *rows[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        rows[r] = x + min(m0 + r, M - 1) * C + c_begin; /* past the end: repeats, not stored */
    gemm_steps(acc, rows, w + c_begin * FP + n0, c_len, FP);
#else
    int ih0[MR], iw0[MR], base[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int m = min(m0 + r, M - 1); /* rows past the end repeat the last; never stored */
        const int n = m / (OH * OW), rem = m % (OH * OW);
        ih0[r] = (rem / OW) * SH - PT;
        iw0[r] = (rem % OW) * SW - PL;
        base[r] = n * (H * W * C) + g * CG + c_begin;
    }
#if TAP_RUNS
    /* Taps kw = lo..hi-1 inside the input for every row of the block: one reduction run of
     * (hi - lo) * C steps per kernel row, the others tap by tap (padding columns read zeros). */
    int lo = 0, hi = KW;
#pragma unroll
    for (int r = 0; r < MR; r++) {
        lo = max(lo, -iw0[r]);
        hi = min(hi, W - iw0[r]);
    }
    hi = max(hi, lo); /* a block at both edges at once: every tap by itself */
    for (int kh = 0; kh < KH; kh++) {
        __global const float *row[MR];
        __global const float *src[MR];
#pragma unroll
        for (int r = 0; r < MR; r++) {
            const int ih = ih0[r] + kh * DH;
            const bool inside = ih >= 0 && ih < H;
            row[r] = x + base[r] + (ih * W + iw0[r]) * C;
            src[r] = inside ? row[r] + lo * C : zeros;
        }
        __global const float *wk = w + kh * KW * C * FP + n0;
        gemm_steps(acc, src, wk + lo * C * FP, (hi - lo) * C, FP);
        for (int kw = 0; kw < KW; kw++) {
            if (kw == lo)
                kw = hi;
            if (kw >= KW)
                break;
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int ih = ih0[r] + kh * DH, iw = iw0[r] + kw;
                const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                src[r] = inside ? row[r] + kw * C : zeros;
            }
            gemm_steps(acc, src, wk + kw * C * FP, C, FP);
        }
    }
#else
    for (int kh = 0; kh < KH; kh++) {
        for (int kw = 0; kw < KW; kw++) {
            __global const float *src[MR];
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int ih = ih0[r] + kh * DH, iw = iw0[r] + kw * DW;
                const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                src[r] = inside ? x + base[r] + (ih * W + iw) * C : zeros;
            }
            gemm_steps(acc, src, w + ((kh * KW + kw) * CG + c_begin) * FP + n0, c_len, FP);
        }
    }
#endif
#endif
#undef c_begin
#undef c_len
#endif
#if SPLIT > 1
    store_part(acc, y + (int)get_global_id(2) * M * F, m0, n0, M, F);
#elif FP != F
    store_output_padded(acc, bias, RESIDUAL, y, m0, n0, M);
#else
    store_output(acc, bias, RESIDUAL, y, m0, n0, M, F);
#endif
}
#endif

/* The sums of conv2d_forward's SPLIT parts, added in order (the same sums every run), with the
 * epilogue of the layer (bias, residual, activation): y[at] over M x F outputs, VW at a time.
 * Launch: flat, M * F / VW work-items. */
#ifdef CONV2D_PARTS_FINISH
__kernel void conv2d_parts_finish(__global const float *restrict parts,
                                  __global const float *restrict bias, __global float *restrict y,
                                  int batch RESIDUAL_PARAM)
{
    const int size = batch * OH * OW * F;
    const int at = (int)get_global_id(0) * VW;
    if (at >= size)
        return;
    floatV s = LOADV(parts + at);
    for (int p = 1; p < SPLIT; p++)
        s += LOADV(parts + p * size + at);
    STOREV(epilogue(s, bias, RESIDUAL, at % F, at), y + at);
}
#endif

/* The input gradient kernels below also compute a transposed convolution's forward pass
 * (cnnc/backends/opencl/bind_conv_transpose.py), whose bias (-D HAS_BIAS=1: then their last
 * parameter) and activation (ACT_<NAME>) are added as the sums are stored, as conv2d_forward's
 * are, instead of in a pass of their own over the output. */
#if defined(CONV2D_GRAD_INPUT) || defined(CONV2D_GRAD_INPUT_PHASES)
#if HAS_BIAS
#define BIAS_PARAM , __global const float *restrict bias
#define BIAS bias
#else
#define BIAS_PARAM
#define BIAS 0
#endif
#endif

/* dx[n, ih, iw, g*CG + c] = sum over taps (kh, kw) and f < FG of
 *     dy[n, oh, ow, g*FG + f] * w[kh, kw, c, g*FG + f]
 * where oh*SH = ih + PT - kh*DH (and the same for ow).
 * `wt` is w with each tap's (CG, F) matrix transposed to (F, CG) (gemm.cl: transpose), so the
 * columns c of one reduction step are contiguous. GEMM rows m = (n, ih, iw), columns c. */
#ifdef CONV2D_GRAD_INPUT
#if LOCAL_TILE
/* Element (m, k) of the input gradient's A: m = (n, ih, iw), k = (kh, kw, f). */
static float input_grad_source(__global const float *dy, int m, int k, int M)
{
    if (m >= M || k >= KH * KW * F)
        return 0.0f;
    const int n = m / (H * W), rem = m % (H * W), tap = k / F;
    const int th = rem / W + PT - (tap / KW) * DH, tw = rem % W + PL - (tap % KW) * DW;
    const int oh = th / SH, ow = tw / SW;
    const bool hit = th >= 0 && tw >= 0 && oh * SH == th && ow * SW == tw && oh < OH && ow < OW;
    return hit ? dy[((n * OH + oh) * OW + ow) * F + k % F] : 0.0f;
}

#define KDIM (KH * KW * F)
#define A_ELEM(m, k) input_grad_source(dy, (m), (k), M)
#define B_ELEM(k, n) ((k) < KDIM && (n) < C ? wt[(k) * C + (n)] : 0.0f)
#endif

__kernel void conv2d_grad_input(__global const float *restrict dy,
                                __global const float *restrict wt,
                                __global const float *restrict zeros,
                                __global float *restrict dx,
                                int batch RESIDUAL_PARAM BIAS_PARAM)
{
    const int M = batch * H * W;
    const int m0 = BLOCK_ROW(), c0 = BLOCK_COL();
    floatV acc[MR][NV];
    zero_block(acc);
#if LOCAL_TILE
    TILED_GEMM(acc)
#else
    const int g = c0 / CG;
    int th0[MR], tw0[MR], base[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int m = min(m0 + r, M - 1);
        const int n = m / (H * W), rem = m % (H * W);
        th0[r] = rem / W + PT;
        tw0[r] = rem % W + PL;
        base[r] = n * (OH * OW * F) + g * FG;
    }
    for (int kh = 0; kh < KH; kh++) {
        for (int kw = 0; kw < KW; kw++) {
            __global const float *src[MR];
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int th = th0[r] - kh * DH, tw = tw0[r] - kw * DW;
                const int oh = th / SH, ow = tw / SW;
                const bool hit = th >= 0 && tw >= 0 && oh * SH == th && ow * SW == tw &&
                                 oh < OH && ow < OW;
                src[r] = hit ? dy + base[r] + (oh * OW + ow) * F : zeros;
            }
            const int tap = kh * KW + kw;
            gemm_steps(acc, src, wt + (tap * F + g * FG) * CG + (c0 - g * CG), FG, CG);
        }
    }
#endif
    /* RESIDUAL: with -D HAS_ACT_GRAD=1, the activation's v whose derivative the store applies */
    store_output(acc, BIAS, RESIDUAL, dx, m0, c0, M, C);
}
#endif

/* The input gradient of a strided convolution by phases (a sub-pixel decomposition): the sum
 * above without its zero terms. dx pixel ih takes tap kh only where ih + PT - kh*DH is a
 * multiple of SH, so the pixels of one phase ph = (ih + PT) mod SH take only the taps with
 * kh*DH = ph (mod SH): every TSH-th tap from the phase's first, TSH = SH / gcd(SH, DH) (-D TSH
 * TSW), about KH / SH taps instead of KH (a quarter of the FMAs of a 3x3 stride-2 kernel).
 * GEMM rows are grouped by phase (ph, pw), in that order: phase rows j = (n, qh, qw) are the
 * pixels ih = ihf + qh*SH, iw = iwf + qw*SW (ihf, iwf the phase's first), and each phase's rows
 * are padded to whole blocks (MR rows; BM with local tiles), so a block lies in one phase and
 * loops over its taps only; for tap kh, oh = qh + (ihf + PT - kh*DH) / SH, an exact division.
 * A phase that no tap reaches (a 1x1 stride-2 kernel's odd pixels) stores zeros: dx is
 * written, not accumulated. Launch: dim 0 = the phases' row blocks (strided_grad.py: phase_blocks;
 * with LOCAL_TILE, one work-group of TX * TY per BM-row tile), dim 1 = column blocks. */
#ifdef CONV2D_GRAD_INPUT_PHASES
#if LOCAL_TILE
#define ROW_ALIGN BM
#define BLOCK_INDEX() ((int)get_group_id(0))
#else
#define ROW_ALIGN MR
#define BLOCK_INDEX() ((int)get_global_id(0))
#endif

/* Along one axis of stride s, dilation d and padding `pad`: phase p's first pixel, its pixel
 * count in [0, size), and its first tap (a big number if no tap of step t reaches it). */
static int phase_first_pixel(int p, int pad, int s)
{
    return ((p - pad) % s + s) % s;
}

static int phase_pixels(int first, int size, int s)
{
    return first < size ? (size - first + s - 1) / s : 0;
}

static int phase_first_tap(int p, int d, int s, int t)
{
    for (int k = 0; k < t; k++)
        if ((k * d) % s == p)
            return k;
    return 1 << 20;
}

/* Where a block of rows lies: its phase's geometry, and the phase's first block. */
typedef struct {
    int ihf, iwf;   /* first pixel */
    int qh, qw;     /* pixels along each axis */
    int khf, kwf;   /* first tap */
    int rows;       /* batch * qh * qw */
    int first;      /* first block index */
} Phase;

static Phase find_phase(int block, int batch)
{
    Phase ph;
    ph.first = 0;
    for (int p = 0; p < SH * SW; p++) {
        const int a = p / SW, b = p % SW;
        ph.ihf = phase_first_pixel(a, PT, SH);
        ph.iwf = phase_first_pixel(b, PL, SW);
        ph.qh = phase_pixels(ph.ihf, H, SH);
        ph.qw = phase_pixels(ph.iwf, W, SW);
        ph.khf = phase_first_tap(a, DH, SH, TSH);
        ph.kwf = phase_first_tap(b, DW, SW, TSW);
        ph.rows = batch * ph.qh * ph.qw;
        const int blocks = (ph.rows + ROW_ALIGN - 1) / ROW_ALIGN;
        if (block < ph.first + blocks)
            return ph;
        ph.first += blocks;
    }
    ph.rows = 0; /* past the last phase: the grid is exact, so never */
    return ph;
}

static int phase_taps(int first, int k, int t)
{
    return first < k ? (k - first + t - 1) / t : 0;
}

#if LOCAL_TILE
/* Element (j, k) of the phase's A: j = (n, qh, qw), k = (the phase's tap i, f). */
static float phase_grad_source(__global const float *dy, Phase ph, int j, int k, int kdim, int ntw)
{
    if (j >= ph.rows || k >= kdim)
        return 0.0f;
    const int i = k / F;
    const int kh = ph.khf + (i / ntw) * TSH, kw = ph.kwf + (i % ntw) * TSW;
    const int n = j / (ph.qh * ph.qw), rem = j % (ph.qh * ph.qw);
    const int oh = rem / ph.qw + (ph.ihf + PT - kh * DH) / SH;
    const int ow = rem % ph.qw + (ph.iwf + PL - kw * DW) / SW;
    const bool hit = oh >= 0 && oh < OH && ow >= 0 && ow < OW;
    return hit ? dy[((n * OH + oh) * OW + ow) * F + k % F] : 0.0f;
}

/* Element (k, c) of the phase's B: the transposed kernel's row (tap, f). */
static float phase_grad_weight(__global const float *wt, Phase ph, int k, int c, int kdim, int ntw)
{
    if (k >= kdim || c >= C)
        return 0.0f;
    const int i = k / F;
    const int kh = ph.khf + (i / ntw) * TSH, kw = ph.kwf + (i % ntw) * TSW;
    return wt[((kh * KW + kw) * F + k % F) * C + c];
}

#define KDIM kdim
#define A_ELEM(m, k) phase_grad_source(dy, ph, (m) - ph.first * BM, (k), kdim, ntw)
#define B_ELEM(k, n) phase_grad_weight(wt, ph, (k), (n), kdim, ntw)
#endif

__kernel void conv2d_grad_input_phases(__global const float *restrict dy,
                                       __global const float *restrict wt,
                                       __global const float *restrict zeros,
                                       __global float *restrict dx, int batch BIAS_PARAM)
{
    const Phase ph = find_phase(BLOCK_INDEX(), batch);
    if (ph.rows == 0)
        return;
    const int j0 = BLOCK_ROW() - ph.first * ROW_ALIGN, c0 = BLOCK_COL();
    const int nth = phase_taps(ph.khf, KH, TSH), ntw = phase_taps(ph.kwf, KW, TSW);
    const int pixels = ph.qh * ph.qw;
    floatV acc[MR][NV];
    zero_block(acc);
#if LOCAL_TILE
    const int kdim = nth * ntw * F;
    TILED_GEMM(acc)
#else
    const int g = c0 / CG;
    int qh[MR], qw[MR], base[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int j = min(j0 + r, ph.rows - 1); /* rows past the phase's end: never stored */
        const int rem = j % pixels;
        qh[r] = rem / ph.qw;
        qw[r] = rem % ph.qw;
        base[r] = (j / pixels) * (OH * OW * F) + g * FG;
    }
    for (int i = 0; i < nth; i++) {
        const int kh = ph.khf + i * TSH, dh = (ph.ihf + PT - kh * DH) / SH;
        for (int l = 0; l < ntw; l++) {
            const int kw = ph.kwf + l * TSW, dw = (ph.iwf + PL - kw * DW) / SW;
            __global const float *src[MR];
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int oh = qh[r] + dh, ow = qw[r] + dw;
                const bool hit = oh >= 0 && oh < OH && ow >= 0 && ow < OW;
                src[r] = hit ? dy + base[r] + (oh * OW + ow) * F : zeros;
            }
            const int tap = kh * KW + kw;
            gemm_steps(acc, src, wt + (tap * F + g * FG) * CG + (c0 - g * CG), FG, CG);
        }
    }
#endif
    __global float *rows[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int j = min(j0 + r, ph.rows - 1);
        const int rem = j % pixels;
        const int ih = ph.ihf + (rem / ph.qw) * SH, iw = ph.iwf + (rem % ph.qw) * SW;
        rows[r] = dx + (((j / pixels) * H + ih) * W + iw) * C;
    }
    store_rows(acc, BIAS, rows, ph.rows - j0, c0, C);
}
#endif

/* dw[kh, kw, c, f] = sum over (n, oh, ow) of
 *     x[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, g*CG + c] * dy[n, oh, ow, f],  g = f / FG.
 * GEMM rows j = (kh, kw, c) (KH*KW*CG of them), columns f, reduction over the N*OH*OW pixels,
 * cut into parts along dim 2: part s writes out + s * (KH*KW*CG*F), and with several parts
 * reduce.cl sums them. TAP_ROWS = 1 when CG % MR == 0: a row block then lies within one
 * tap and shares its bounds check. -D SYNC_STEPS=S (CPUs): a work-group holds blocks of one
 * part only (a local size of 1 along dim 2), which wait for each other every S pixels. */
#ifdef CONV2D_GRAD_KERNEL
__kernel void conv2d_grad_kernel(__global const float *restrict x,
                                 __global const float *restrict dy,
                                 __global float *restrict out, int batch)
{
    const int R = KH * KW * CG;
    const int P = batch * OH * OW;
    const int parts = get_global_size(2);
    const int j0 = BLOCK_ROW(), f0 = BLOCK_COL();
    const int part = get_global_id(2);
    const int g = f0 / FG;
    const int p_begin = part_begin(P, part, parts);
    const int p_end = part_begin(P, part + 1, parts);

    int dh[MR], dw[MR], cc[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
        const int j = min(j0 + r, R - 1);
        const int tap = j / CG;
        dh[r] = (tap / KW) * DH - PT;
        dw[r] = (tap % KW) * DW - PL;
        cc[r] = g * CG + j % CG;
    }
    floatV acc[MR][NV];
    zero_block(acc);

    int n = p_begin / (OH * OW);
    int oh = (p_begin % (OH * OW)) / OW;
    int ow = p_begin % OW;
#if SYNC_STEPS
    /* The work-group's blocks (one part's) take the part's pixels SYNC_STEPS at a time, all
     * blocks one chunk before any the next: the chunk's x and dy are read from the core's
     * cache by every block after the first, instead of each block streaming the whole part. */
    for (int chunk = p_begin; chunk < p_end; chunk += SYNC_STEPS) {
    const int chunk_end = min(chunk + SYNC_STEPS, p_end);
    for (int p = chunk; p < chunk_end; p++) {
#else
    for (int p = p_begin; p < p_end; p++) {
#endif
        floatV b[NV];
        float a[MR];
        load_row(b, dy + p * F + f0);
        const int img = n * (H * W * C);
#if TAP_ROWS
        const int ih = oh * SH + dh[0], iw = ow * SW + dw[0];
        const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
        if (inside) {
            __global const float *src = x + img + (ih * W + iw) * C + cc[0];
#pragma unroll
            for (int r = 0; r < MR; r++)
                a[r] = src[r];
            rank1_update(acc, a, b);
        }
#else
#pragma unroll
        for (int r = 0; r < MR; r++) {
            const int ih = oh * SH + dh[r], iw = ow * SW + dw[r];
            const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
            a[r] = inside ? x[img + (ih * W + iw) * C + cc[r]] : 0.0f;
        }
        rank1_update(acc, a, b);
#endif
        if (++ow == OW) {
            ow = 0;
            if (++oh == OH) {
                oh = 0;
                n++;
            }
        }
    }
#if SYNC_STEPS
    barrier(CLK_GLOBAL_MEM_FENCE);
    }
#endif
    store_block(acc, 0, out + part * (R * F), j0, f0, R, F);
}
#endif

/* a[m, k] = x[n, oh*SH + kh*DH - PT, ow*SW + kw*DW - PL, c] (0 in the padding), m = (n, oh, ow),
 * k = (kh, kw, c): the explicit GEMM operand, for convolutions with very few input channels
 * (the first layer), where the implicit GEMM's per-tap bookkeeping would outweigh its
 * arithmetic. bind.py follows it with gemm.cl's matmul (forward) or matmul_tn (kernel
 * gradient). groups == 1. Launch: one work-item per PIX consecutive rows m (-D PIX, tiling.py's
 * elements_per_item: on a CPU each work-item writes PIX whole rows, contiguous, for one division;
 * a row a work-item wrote a GEMM operand of 9 floats at 3-4 GB/s on pocl, Zen 3). */
#ifdef IM2COL
#ifndef PIX
#define PIX 1
#endif
__kernel void im2col(__global const float *restrict x, __global float *restrict a,
                     int batch GATE_PARAM)
{
    const int m0 = get_global_id(0) * PIX, m1 = min(m0 + PIX, batch * OH * OW);
    int n = m0 / (OH * OW), rem = m0 % (OH * OW);
    int oh = rem / OW, ow = rem % OW;
    for (int m = m0; m < m1; m++) {
        const int ih0 = oh * SH - PT, iw0 = ow * SW - PL;
        __global const float *img = x + n * (H * W * C);
        __global float *row = a + m * (KH * KW * C);
        for (int kh = 0; kh < KH; kh++) {
            const int ih = ih0 + kh * DH;
            const bool row_inside = ih >= 0 && ih < H;
            for (int kw = 0; kw < KW; kw++) {
                const int iw = iw0 + kw * DW;
                const bool inside = row_inside && iw >= 0 && iw < W;
                for (int c = 0; c < C; c++) {
#if GATED
                    const float scale =
                        inside ? gate[n * GS0 + ih * GS1 + iw * GS2 + c * GS3] : 0.0f;
#else
                    const float scale = 1.0f;
#endif
                    row[(kh * KW + kw) * C + c] =
                        inside ? img[(ih * W + iw) * C + c] * scale : 0.0f;
                }
            }
        }
        if (++ow == OW) { /* the next row's position */
            ow = 0;
            if (++oh == OH) {
                oh = 0;
                n++;
            }
        }
    }
}
#endif
