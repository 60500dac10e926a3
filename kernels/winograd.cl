/* Stride-1 3x3 convolutions by Winograd's minimal filtering F(M x M, 3 x 3) (Lavin & Gray 2015),
 * NHWC activations, HWIO kernels: four kernels, one launch each (cnnc/backends/opencl/winograd.py
 * binds them, for conv2d's forward pass and its input gradient).
 *
 *   winograd_filter  U[t][c][f]   = (G g G^T)[t] for each (c, f); g the 3x3 kernel slice
 *   winograd_input   V[t][p][c]   = (B^T d B)[t] for each tile p and channel c; d the T x T input
 *                                   patch at (th*M - PT, tw*M - PL), zero outside the image
 *   winograd_gemm    Mt[t][p][f]  = sum_c V[t][p][c] U[t][c][f]: T*T independent GEMMs (tile.h)
 *   winograd_output  y[n, th*M + i, tw*M + j, f] = act(bias[f] + (A^T Mt[.][p][f] A)[i][j]),
 *                                   only the positions inside OH x OW
 * with T = M + 2 and t = (row, column) of the T x T transformed tile, row-major.
 *
 * Geometry (-D): H W C input, OH OW F output, PT PL padding before (any sign), WINO_M (2, 4, 7),
 *   TH TW tiles per image (ceil(OH / M), ceil(OW / M)). The batch-dependent counts are
 *   arguments: `tile0` (the first tile of this launch: a launch may cover a chunk of the batch's
 *   tiles) and `tiles` (how many). Tile p = (n, th, tw) row-major over the whole batch.
 * Filter (-D FLIP=1, the input gradient): the convolution's kernel is w rotated 180 degrees with
 *   its two channel axes swapped, read straight from w (of shape 3 x 3 x F x C) with no copy.
 * Vectors (-D VW): channels per work-item of the transforms (VW divides C for winograd_input,
 *   F for winograd_output). The GEMM's tiling: MR VW NV (and LOCAL_TILE TX TY KT), as conv2d.cl.
 * Epilogue (winograd_output, -D): HAS_BIAS, HAS_RESIDUAL, ACT_<NAME> (common.h's `epilogue`).
 * Max pooling as it stores (winograd_output and winograd_fused, -D POOL=1 POOL_H POOL_W; the
 *   binder's, bind_conv_maxpool.py): y is the POOL_H x POOL_W map of 2x2 windows at stride 2
 *   over the OH x OW convolution, each the max of its cells after the epilogue (max does not
 *   commute with every activation). A tile's origin is even (M is), so it holds whole
 *   windows; a window cut short by the map's bottom or right edge keeps its real cells.
 *
 * A concatenation read in place (winograd_input and winograd_fused, -D CONCAT=1 C0 UP0H UP0W
 *   UP1H UP1W; bind_conv_concat.py): the input is the channel concatenation of x (channels
 *   0..C0-1) and x1 (the other C - C0), part i stored at H / UPiH x W / UPiW and read at
 *   (h / UPiH, w / UPiW): nearest upsampling by those factors. Neither the concatenated nor the
 *   upsampled map is written. A vector of channels never straddles the parts (VW, VC divide C0).
 *
 * Why the transforms are written out as sums rather than loops over matrices: most entries of
 * B^T and A^T are 0 or +-1, and spelling them out leaves only the real multiplies.
 */
#include "tile.h"
#include "pool_store.h"

#define T (WINO_M + 2)
#define TT (T * T)
/* Tiles a transform into a blocked layout (VBLK, EPACK) takes block by block, and the tile
 * count rounded up to whole groups of them (its work-items). */
#define GROUP_TILES 16
#define GROUPED(tiles) (((tiles) + GROUP_TILES - 1) / GROUP_TILES * GROUP_TILES)
/* Floats from one point's plane of V (or Mt) to the next, for planes of n floats. -D
 * WINO_PAD=1 (winograd.py's forward launches): n rounded up to whole 4 KiB pages
 * and one cache line more, so that the T*T planes a transform's work-item reads or writes
 * (81 with F(7x7)) start in different sets of the L1 cache; planes a multiple of 4 KiB apart
 * all fall in one 8-way set and evict one another between neighbouring work-items (measured:
 * F(7x7)'s output transform 2.6x slower than F(4x4)'s on the seed's 14 x 14 layer). */
#if WINO_PAD
#define PLANE(n) (((n) + 1023) / 1024 * 1024 + 16)
#else
#define PLANE(n) (n)
#endif

#if WINO_M == 2
/* F(2x2, 3x3), interpolation points 0, 1, -1 (and infinity). */
#define BT_1D(d, o)                                                                           \
    do {                                                                                      \
        o[0] = d[0] - d[2];                                                                   \
        o[1] = d[1] + d[2];                                                                   \
        o[2] = d[2] - d[1];                                                                   \
        o[3] = d[1] - d[3];                                                                   \
    } while (0)
#define G_1D(g, o)                                                                            \
    do {                                                                                      \
        o[0] = g[0];                                                                          \
        o[1] = 0.5f * (g[0] + g[1] + g[2]);                                                   \
        o[2] = 0.5f * (g[0] - g[1] + g[2]);                                                   \
        o[3] = g[2];                                                                          \
    } while (0)
#define AT_1D(m, o)                                                                           \
    do {                                                                                      \
        o[0] = m[0] + m[1] + m[2];                                                            \
        o[1] = m[1] - m[2] - m[3];                                                            \
    } while (0)
#elif WINO_M == 4
/* F(4x4, 3x3), interpolation points 0, 1, -1, 2, -2 (and infinity). */
#define BT_1D(d, o)                                                                           \
    do {                                                                                      \
        o[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];                                              \
        o[1] = d[3] + d[4] - 4.0f * (d[1] + d[2]);                                            \
        o[2] = d[4] - d[3] + 4.0f * (d[1] - d[2]);                                            \
        o[3] = d[4] - d[2] + 2.0f * (d[3] - d[1]);                                            \
        o[4] = d[4] - d[2] + 2.0f * (d[1] - d[3]);                                            \
        o[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];                                              \
    } while (0)
#define G_1D(g, o)                                                                            \
    do {                                                                                      \
        o[0] = 0.25f * g[0];                                                                  \
        o[1] = (g[0] + g[1] + g[2]) * (-1.0f / 6.0f);                                         \
        o[2] = (g[0] - g[1] + g[2]) * (-1.0f / 6.0f);                                         \
        o[3] = g[0] * (1.0f / 24.0f) + g[1] * (1.0f / 12.0f) + g[2] * (1.0f / 6.0f);          \
        o[4] = g[0] * (1.0f / 24.0f) - g[1] * (1.0f / 12.0f) + g[2] * (1.0f / 6.0f);          \
        o[5] = g[2];                                                                          \
    } while (0)
#define AT_1D(m, o)                                                                           \
    do {                                                                                      \
        o[0] = m[0] + (m[1] + m[2]) + (m[3] + m[4]);                                          \
        o[1] = (m[1] - m[2]) + 2.0f * (m[3] - m[4]);                                          \
        o[2] = (m[1] + m[2]) + 4.0f * (m[3] + m[4]);                                          \
        o[3] = (m[1] - m[2]) + 8.0f * (m[3] - m[4]) + m[5];                                   \
    } while (0)
#elif WINO_M == 7
/* F(7x7, 3x3), interpolation points 0, -2, -1, -1/2, 1/3, 2/3, 4/3, 3 (and infinity):
 * generated by scripts/winograd_sums.py from winograd.py's exact matrices. */
#define BT_1D(d, o)                                                                           \
    do {                                                                                      \
        o[0] = 48.0f * d[0] - 100.0f * d[1] - 308.0f * d[2] + 439.0f * d[3] + 395.0f * d[4]   \
            - 357.0f * d[5] - 99.0f * d[6] + 54.0f * d[7];                                    \
        o[1] = 24.0f * d[1] - 62.0f * d[2] - 123.0f * d[3] + 281.0f * d[4] + 57.0f * d[5]     \
            - 207.0f * d[6] + 54.0f * d[7];                                                   \
        o[2] = 48.0f * d[1] - 148.0f * d[2] - 160.0f * d[3] + 599.0f * d[4] - 204.0f * d[5]   \
            - 153.0f * d[6] + 54.0f * d[7];                                                   \
        o[3] = 48.0f * d[1] - 196.0f * d[2] + 84.0f * d[3] + 271.0f * d[4] - 147.0f * d[5]    \
            - 63.0f * d[6] + 27.0f * d[7];                                                    \
        o[4] = -48.0f * d[1] - 44.0f * d[2] + 176.0f * d[3] + 89.0f * d[4] - 128.0f * d[5]    \
            - 27.0f * d[6] + 18.0f * d[7];                                                    \
        o[5] = -24.0f * d[1] + 14.0f * d[2] + 175.0f * d[3] + 43.0f * d[4] - 133.0f * d[5]    \
            - 21.0f * d[6] + 18.0f * d[7];                                                    \
        o[6] = -12.0f * d[1] + 16.0f * d[2] + 89.0f * d[3] - 43.0f * d[4] - 131.0f * d[5]     \
            - 9.0f * d[6] + 18.0f * d[7];                                                     \
        o[7] = -16.0f * d[1] + 28.0f * d[2] + 112.0f * d[3] - 109.0f * d[4] - 168.0f * d[5]   \
            + 63.0f * d[6] + 54.0f * d[7];                                                    \
        o[8] = 48.0f * d[1] - 100.0f * d[2] - 308.0f * d[3] + 439.0f * d[4] + 395.0f * d[5]   \
            - 357.0f * d[6] - 99.0f * d[7] + 54.0f * d[8];                                    \
    } while (0)
#define G_1D(g, o)                                                                            \
    do {                                                                                      \
        o[0] = (1.0f / 48.0f) * g[0];                                                         \
        o[1] = -(1.0f / 16800.0f) * g[0] + (1.0f / 8400.0f) * g[1] - (1.0f / 4200.0f) * g[2]; \
        o[2] = (1.0f / 560.0f) * g[0] - (1.0f / 560.0f) * g[1] + (1.0f / 560.0f) * g[2];      \
        o[3] = -(2.0f / 8085.0f) * g[0] + (1.0f / 8085.0f) * g[1] - (1.0f / 16170.0f) * g[2]; \
        o[4] = -(1.0f / 10080.0f) * g[0] - (1.0f / 30240.0f) * g[1]                           \
            - (1.0f / 90720.0f) * g[2];                                                       \
        o[5] = (1.0f / 23520.0f) * g[0] + (1.0f / 35280.0f) * g[1] + (1.0f / 52920.0f) * g[2];\
        o[6] = -(1.0f / 277200.0f) * g[0] - (1.0f / 207900.0f) * g[1]                         \
            - (1.0f / 155925.0f) * g[2];                                                      \
        o[7] = (1.0f / 117600.0f) * g[0] + (1.0f / 39200.0f) * g[1]                           \
            + (3.0f / 39200.0f) * g[2];                                                       \
        o[8] = (1.0f / 54.0f) * g[2];                                                         \
    } while (0)
#define AT_1D(m, o)                                                                           \
    do {                                                                                      \
        o[0] = m[0] + m[1] + m[2] + 64.0f * m[3] + 729.0f * m[4] + 729.0f * m[5]              \
            + 729.0f * m[6] + m[7];                                                           \
        o[1] = -2.0f * m[1] - m[2] - 32.0f * m[3] + 243.0f * m[4] + 486.0f * m[5]             \
            + 972.0f * m[6] + 3.0f * m[7];                                                    \
        o[2] = 4.0f * m[1] + m[2] + 16.0f * m[3] + 81.0f * m[4] + 324.0f * m[5]               \
            + 1296.0f * m[6] + 9.0f * m[7];                                                   \
        o[3] = -8.0f * m[1] - m[2] - 8.0f * m[3] + 27.0f * m[4] + 216.0f * m[5]               \
            + 1728.0f * m[6] + 27.0f * m[7];                                                  \
        o[4] = 16.0f * m[1] + m[2] + 4.0f * m[3] + 9.0f * m[4] + 144.0f * m[5]                \
            + 2304.0f * m[6] + 81.0f * m[7];                                                  \
        o[5] = -32.0f * m[1] - m[2] - 2.0f * m[3] + 3.0f * m[4] + 96.0f * m[5]                \
            + 3072.0f * m[6] + 243.0f * m[7];                                                 \
        o[6] = 64.0f * m[1] + m[2] + m[3] + m[4] + 64.0f * m[5] + 4096.0f * m[6]              \
            + 729.0f * m[7] + m[8];                                                           \
    } while (0)
#else
#error "WINO_M must be 2, 4 or 7"
#endif

/* out (S x S) = L in L^T for a 1-D transform L (one of the *_1D macros) from R to S points and
 * `in` an R x R array: L applied down each column of `in`, then along each row of the result. */
#define TRANSFORM_2D(TYPE, L, in, R, S, out)                                                  \
    do {                                                                                      \
        TYPE col_[R], res_[S], mid_[S][R], row_[S];                                           \
        _Pragma("unroll") for (int j_ = 0; j_ < R; j_++) {                                    \
            _Pragma("unroll") for (int i_ = 0; i_ < R; i_++) col_[i_] = in[i_][j_];           \
            L(col_, res_);                                                                    \
            _Pragma("unroll") for (int i_ = 0; i_ < S; i_++) mid_[i_][j_] = res_[i_];         \
        }                                                                                     \
        _Pragma("unroll") for (int i_ = 0; i_ < S; i_++) {                                    \
            L(mid_[i_], row_);                                                                \
            _Pragma("unroll") for (int j_ = 0; j_ < S; j_++) out[i_][j_] = row_[j_];          \
        }                                                                                     \
    } while (0)

/* d (T x T, of TYPE) = the input patch at (h0, w0) of the H x W image at `img` (from the
 * channel the pointer is at) whose pixels are stored PC channels apart at H / UH x W / UW,
 * pixel (h, w) at (h / UH, w / UW), LOAD-ed TYPE-wide; zero outside the image. */
#define LOAD_PATCH_AT(TYPE, LOAD, d, img, PC, UH, UW, h0, w0)                                 \
    do {                                                                                      \
        _Pragma("unroll") for (int a_ = 0; a_ < T; a_++) {                                    \
            const int ih_ = (h0) + a_;                                                        \
            _Pragma("unroll") for (int b_ = 0; b_ < T; b_++) {                                \
                const int iw_ = (w0) + b_;                                                    \
                const bool in_ = ih_ >= 0 && ih_ < H && iw_ >= 0 && iw_ < W;                  \
                d[a_][b_] = in_ ? LOAD((img) + ((ih_ / (UH)) * (W / (UW)) + iw_ / (UW)) * (PC)) \
                                : (TYPE)(0.0f);                                               \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#define LOAD_PATCH(TYPE, LOAD, d, img, h0, w0) LOAD_PATCH_AT(TYPE, LOAD, d, img, C, 1, 1, h0, w0)

#if CONCAT
#define CONCAT_PARAM , __global const float *restrict x1
#define C1 (C - C0)
/* d = the patch of image n's channels c.. (inside one part) at (h0, w0) */
#define LOAD_PATCH_X(TYPE, LOAD, d, n, c, h0, w0)                                             \
    do {                                                                                      \
        if ((c) < C0)                                                                         \
            LOAD_PATCH_AT(TYPE, LOAD, d, x + (n) * (H / UP0H * (W / UP0W) * C0) + (c), C0,    \
                          UP0H, UP0W, h0, w0);                                                \
        else                                                                                  \
            LOAD_PATCH_AT(TYPE, LOAD, d, x1 + (n) * (H / UP1H * (W / UP1W) * C1) + (c) - C0,  \
                          C1, UP1H, UP1W, h0, w0);                                            \
    } while (0)
#else
#define CONCAT_PARAM
#define LOAD_PATCH_X(TYPE, LOAD, d, n, c, h0, w0)                                             \
    LOAD_PATCH(TYPE, LOAD, d, x + (n) * (H * W * C) + (c), h0, w0)
#endif

/* Stores the M x M output tile `out` (floatV, before the epilogue) of tile (n, th, tw), filters
 * fc..fc+VW-1: each position inside OH x OW, or with POOL each 2x2 window's max (its mean with POOL_AVG: pool_store.h). */
#if POOL
/* Pooled rows (columns) of a tile: M / 2 whole windows; with odd M (one tile covering the map,
 * winograd.py and bind_conv_maxpool.py see to it) also the window cut short by the tile's
 * last row, of whose cells the tile holds the first. */
#if WINO_M % 2 && (TH > 1 || TW > 1)
#error "an odd WINO_M pools as it stores only where one tile covers the map (TH = TW = 1)"
#endif
#define POOL_SPAN ((WINO_M + 1) / 2)
#define STORE_TILE(out, n, th, tw, fc)                                                        \
    do {                                                                                      \
        _Pragma("unroll") for (int a_ = 0; a_ < POOL_SPAN; a_++) {                            \
            const int ph_ = (th) * (WINO_M / 2) + a_;                                         \
            _Pragma("unroll") for (int b_ = 0; b_ < POOL_SPAN; b_++) {                        \
                const int pw_ = (tw) * (WINO_M / 2) + b_;                                     \
                if (ph_ < POOL_H && pw_ < POOL_W) {                                           \
                    floatV best_ = POOL_START;                                                \
                    _Pragma("unroll") for (int i_ = 0; i_ < 2; i_++) {                        \
                        _Pragma("unroll") for (int j_ = 0; j_ < 2; j_++) {                    \
                            const int oh_ = 2 * ph_ + i_, ow_ = 2 * pw_ + j_;                 \
                            if (oh_ < OH && ow_ < OW && 2 * a_ + i_ < WINO_M &&               \
                                2 * b_ + j_ < WINO_M) {                                       \
                                const int at_ = ((n) * (OH * OW) + oh_ * OW + ow_) * F + (fc); \
                                best_ = POOL_JOIN(best_, epilogue(out[2 * a_ + i_][2 * b_ + j_], \
                                                                  bias, RESIDUAL, (fc), at_)); \
                            }                                                                 \
                        }                                                                     \
                    }                                                                         \
                    STOREV(POOL_END(best_), y + (((n) * POOL_H + ph_) * POOL_W + pw_) * F + (fc)); \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)
#else
#define STORE_TILE(out, n, th, tw, fc)                                                        \
    do {                                                                                      \
        _Pragma("unroll") for (int a_ = 0; a_ < WINO_M; a_++) {                               \
            const int oh_ = (th) * WINO_M + a_;                                               \
            _Pragma("unroll") for (int b_ = 0; b_ < WINO_M; b_++) {                           \
                const int ow_ = (tw) * WINO_M + b_;                                           \
                if (oh_ < OH && ow_ < OW) {                                                   \
                    const int at_ = ((n) * (OH * OW) + oh_ * OW + ow_) * F + (fc);            \
                    STOREV(epilogue(out[a_][b_], bias, RESIDUAL, (fc), at_), y + at_);        \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)
#endif

/* Where U[t]'s element (c, f) is, from U[t]'s start. -D UPACK=NR (the GEMM's columns per
 * work-item): in panels of NR filters, [F / NR][C][NR], so that the NR values of B one step of
 * the GEMM reads and the C steps of one work-item's panel are consecutive in memory (C * NR
 * floats: a panel stays in the L1 cache from one work-item to the next, where rows F floats
 * apart would share a few of its sets); 0: row-major [C][F]. */
#if UPACK
#define U_AT(c, f) (((f) / UPACK) * (C * UPACK) + (c) * UPACK + (f) % UPACK)
#else
#define U_AT(c, f) ((c) * F + (f))
#endif

/* Where V[t]'s element (tile q, channel c) is, how many tile rows V[t] holds, and for how many
 * tiles the input transform runs work-items (V_ITEMS). -D VPACK=MR
 * (the GEMM's rows per work-item) and VPACK_C (the input transform's channels per vector): in
 * blocks of MR tiles, [tiles / MR][C / VPACK_C][MR][VPACK_C], so that a work-item of the GEMM
 * reads its MR rows as one stream of consecutive floats (VPACK_C steps of the reduction per
 * MR * VPACK_C floats, where rows C floats apart are MR streams) and a work-item of the input
 * transform still stores whole vectors; the last block's rows past `tiles` are zeros.
 * 0: row-major [tiles][C]. */
#if VPACK
#define V_AT(q, c)                                                                            \
    (((q) / VPACK) * (C * VPACK) + ((c) / VPACK_C) * (VPACK_C * VPACK) +                      \
     ((q) % VPACK) * VPACK_C + (c) % VPACK_C)
#define V_ROWS(tiles) (((tiles) + VPACK - 1) / VPACK * VPACK)
#define V_ITEMS(tiles) V_ROWS(tiles)
#elif VBLK
/* The kernel gradient's (winograd_grad_gemm reads V[t] down its columns): -D VBLK = the input
 * transform's VW, [C / VBLK][tiles][VBLK], so that a step's MR channels of one tile lie in one
 * vector's floats and the steps follow one another (where rows C floats apart take a cache
 * line per step for MR floats of it). */
#define V_AT(q, c) (((c) / VBLK) * (tiles * VBLK) + (q) * VBLK + (c) % VBLK)
#define V_ROWS(tiles) (tiles)
#define V_ITEMS(tiles) GROUPED(tiles)
#else
#define V_AT(q, c) ((q) * C + (c))
#define V_ROWS(tiles) (tiles)
#define V_ITEMS(tiles) (tiles)
#endif

#ifdef WINOGRAD_FILTER
/* One work-item per (c, VW filters f..f+VW-1), f fastest: consecutive work-items write
 * consecutive vectors of U. g[kh][kw] = w[kh, kw, c, f], or with FLIP w[2 - kh, 2 - kw, f, c]
 * (w is 3 x 3 x F x C there: the VW values are C apart, gathered one by one). */
__kernel void winograd_filter(__global const float *restrict w, __global float *restrict u)
{
    const int i = get_global_id(0);
    if (i >= C * (F / VW))
        return;
#if FLIP || UPACK
    /* Neighbouring work-items take neighbouring c where that makes the accesses streams: the
     * input gradient's reads (VW floats C apart: with f fastest, every one a cache line of its
     * own) and the packed U's writes (panels [F / UPACK][C][UPACK]: c fastest writes each panel
     * in order). Measured on pocl, Zen 3, the seed model's training step: 4.7 -> 2.4 ms of
     * filter transforms. The plain layout (GPUs) keeps f fastest: its reads and writes are
     * then rows. */
    const int c = i % C, f = (i / C) * VW;
#else
    const int c = i / (F / VW), f = (i % (F / VW)) * VW;
#endif
    floatV g[3][3], out[T][T];
#pragma unroll
    for (int kh = 0; kh < 3; kh++)
#pragma unroll
        for (int kw = 0; kw < 3; kw++) {
#if FLIP
            float gather[VW];
            __global const float *src = w + ((2 - kh) * 3 + (2 - kw)) * (F * C) + f * C + c;
#pragma unroll
            for (int j = 0; j < VW; j++)
                gather[j] = src[j * C];
            g[kh][kw] = LOADV(gather);
#else
            g[kh][kw] = LOADV(w + (kh * 3 + kw) * (C * F) + c * F + f);
#endif
        }
    TRANSFORM_2D(floatV, G_1D, g, 3, T, out);
#pragma unroll
    for (int a = 0; a < T; a++)
#pragma unroll
        for (int b = 0; b < T; b++)
            STOREV(out[a][b], u + (a * T + b) * (C * F) + U_AT(c, f));
}
#endif

#ifdef WINOGRAD_INPUT
#if VPACK && VPACK_C != VW
#error "a packed V's vectors are the input transform's (VPACK_C = VW)"
#endif
#if VBLK && VBLK != VW
#error "a blocked V's vectors are the input transform's (VBLK = VW)"
#endif
/* One work-item per (tile, VW channels), channels fastest (with VPACK, a block's tiles); `tiles`
 * tiles from tile0 on, written to V as rows 0..tiles-1 (V_AT). With VPACK, the rows up to
 * V_ROWS(tiles) too: zeros. */
__kernel void winograd_input(__global const float *restrict x CONCAT_PARAM, __global float *restrict v,
                             int tile0, int tiles)
{
    const int i = get_global_id(0);
    if (i >= V_ITEMS(tiles) * (C / VW))
        return;
#if VPACK
    /* the block's tiles fastest: consecutive work-items fill the lines of a block together */
    const int per_block = (C / VW) * VPACK, rem = i % per_block;
    const int q = i / per_block * VPACK + rem % VPACK, c = rem / VPACK * VW;
#elif VBLK
    /* per group of GROUP_TILES tiles, block by block: consecutive work-items write
     * consecutive floats of one block, where channels fastest would write to a block a page
     * or more apart every VW channels */
    const int span = GROUP_TILES * (C / VW);
    const int q = i / span * GROUP_TILES + i % GROUP_TILES, c = i % span / GROUP_TILES * VW;
    if (q >= tiles)
        return;
#else
    const int q = i / (C / VW), c = (i % (C / VW)) * VW;
#endif
    floatV out[T][T];
    if (q < tiles) {
        const int p = tile0 + q;
        const int n = p / (TH * TW), th = (p / TW) % TH, tw = p % TW;
        const int h0 = th * WINO_M - PT, w0 = tw * WINO_M - PL;
        floatV d[T][T];
        LOAD_PATCH_X(floatV, LOADV, d, n, c, h0, w0);
        TRANSFORM_2D(floatV, BT_1D, d, T, T, out);
    } else {
#pragma unroll
        for (int a = 0; a < T; a++)
#pragma unroll
            for (int b = 0; b < T; b++)
                out[a][b] = (floatV)(0.0f);
    }
    __global float *vq = v + V_AT(q, c);
#pragma unroll
    for (int a = 0; a < T; a++)
#pragma unroll
        for (int b = 0; b < T; b++)
            STOREV(out[a][b], vq + (a * T + b) * PLANE(V_ROWS(tiles) * C));
}
#endif

#ifdef WINOGRAD_GEMM
/* Mt[t] = V[t] (tiles x C) . U[t] (C x F): dim 0 row blocks (tiles), dim 1 column blocks (F),
 * dim 2 the T*T matrices. B's rows are U_STEP floats apart (one panel's, with UPACK). */
#if UPACK
#define U_STEP UPACK
#else
#define U_STEP F
#endif
#if LOCAL_TILE
#define KDIM C
#define A_ELEM(m, k) ((m) < tiles && (k) < C ? vt[V_AT(m, k)] : 0.0f)
#define B_ELEM(k, n) ((k) < C && (n) < F ? ut[U_AT(k, n)] : 0.0f)
#elif VPACK
/* acc += the block's MR rows of V (V_AT: from `a` on, VPACK_C steps of the reduction per
 * MR * VPACK_C floats) . B, whose row k starts at b + k * ldb. */
static void packed_steps(floatV acc[MR][NV], __global const float *a, __global const float *b,
                         int ldb)
{
    for (int k0 = 0; k0 < C; k0 += VPACK_C) {
#pragma unroll
        for (int kk = 0; kk < VPACK_C; kk++) {
            floatV bk[NV];
            float ak[MR];
            load_row(bk, b + (k0 + kk) * ldb);
#pragma unroll
            for (int r = 0; r < MR; r++)
                ak[r] = a[k0 * MR + r * VPACK_C + kk];
            rank1_update(acc, ak, bk);
        }
    }
}
#endif

__kernel void winograd_gemm(__global const float *restrict v, __global const float *restrict u,
                            __global float *restrict mt, int tiles)
{
    const int t = get_global_id(2);
    const int m0 = BLOCK_ROW(), n0 = BLOCK_COL();
    __global const float *vt = v + t * PLANE(V_ROWS(tiles) * C);
    __global const float *ut = u + t * (C * F);
    floatV acc[MR][NV];
    zero_block(acc);
#if LOCAL_TILE
    TILED_GEMM(acc)
#elif VPACK
    packed_steps(acc, vt + m0 * C, ut + U_AT(0, n0), U_STEP);
#else
    __global const float *a_rows[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        a_rows[r] = vt + min(m0 + r, tiles - 1) * C;
    gemm_steps(acc, a_rows, ut + U_AT(0, n0), C, U_STEP);
#endif
    store_block(acc, 0, mt + t * PLANE(tiles * F), m0, n0, tiles, F);
}
#endif

#ifdef WINOGRAD_OUTPUT
/* One work-item per (tile, VW filters), filters fastest; reads rows 0..tiles-1 of Mt, the tiles
 * tile0.. of the batch. */
__kernel void winograd_output(__global const float *restrict mt,
                              __global const float *restrict bias, __global float *restrict y,
                              int tile0, int tiles RESIDUAL_PARAM)
{
    const int i = get_global_id(0);
    if (i >= tiles * (F / VW))
        return;
    const int q = i / (F / VW), f = (i % (F / VW)) * VW;
    const int p = tile0 + q;
    const int n = p / (TH * TW), th = (p / TW) % TH, tw = p % TW;
    floatV m[T][T], out[WINO_M][WINO_M];
#pragma unroll
    for (int a = 0; a < T; a++)
#pragma unroll
        for (int b = 0; b < T; b++)
            m[a][b] = LOADV(mt + (a * T + b) * PLANE(tiles * F) + q * F + f);
    TRANSFORM_2D(floatV, AT_1D, m, T, WINO_M, out);
    STORE_TILE(out, n, th, tw, f);
}
#endif

#ifdef WINOGRAD_FUSED
/* The three steps after the filter transform in one launch, for few channels: there the
 * transforms cost about as much as the GEMMs, and V's and Mt's round trips through memory more
 * than either. One work-item per NT consecutive tiles (tile0 + q0 .. q0 + NT - 1), all F
 * filters: the input transform of its tiles into private memory (channels VC at a time), then
 * per block of FB = VW * NV filters the T*T products with U, accumulated NT tiles x NV vectors at
 * a time in registers (each U vector loaded once for NT tiles), and the output transform with
 * the epilogue. Private memory: NT * T*T * (C + FB) floats (winograd.py keeps it small). */
#define FB (VW * NV)
#if VC == 1
typedef float floatC;
#define LOADC(p) (*(p))
#define STOREC(v, p) (*(p) = (v))
#else
typedef CAT(float, VC) floatC;
#define LOADC(p) CAT(vload, VC)(0, (p))
#define STOREC(v, p) CAT(vstore, VC)((v), 0, (p))
#endif

__kernel void winograd_fused(__global const float *restrict x CONCAT_PARAM, __global const float *restrict u,
                             __global const float *restrict bias, __global float *restrict y,
                             int tiles RESIDUAL_PARAM)
{
    const int q0 = get_global_id(0) * NT;
    if (q0 >= tiles)
        return;
    float vt[NT][TT][C];
#pragma unroll
    for (int k = 0; k < NT; k++) {
        /* Past the last tile: tile tiles-1 again, transformed and multiplied but not stored. */
        const int p = min(q0 + k, tiles - 1);
        const int n = p / (TH * TW), th = (p / TW) % TH, tw = p % TW;
        const int h0 = th * WINO_M - PT, w0 = tw * WINO_M - PL;
        for (int c = 0; c < C; c += VC) {
            floatC d[T][T], out[T][T];
            LOAD_PATCH_X(floatC, LOADC, d, n, c, h0, w0);
            TRANSFORM_2D(floatC, BT_1D, d, T, T, out);
#pragma unroll
            for (int a = 0; a < T; a++)
#pragma unroll
                for (int b = 0; b < T; b++)
                    STOREC(out[a][b], &vt[k][a * T + b][c]);
        }
    }
    for (int f0 = 0; f0 < F; f0 += FB) {
        floatV mt[NT][NV][TT];
        for (int t = 0; t < TT; t++) {
            floatV acc[NT][NV];
#pragma unroll
            for (int k = 0; k < NT; k++)
#pragma unroll
                for (int j = 0; j < NV; j++)
                    acc[k][j] = (floatV)(0.0f);
            __global const float *ut = u + t * (C * F) + f0;
#pragma unroll 4
            for (int c = 0; c < C; c++) {
                floatV w[NV];
#pragma unroll
                for (int j = 0; j < NV; j++)
                    w[j] = LOADV(ut + c * F + j * VW);
#pragma unroll
                for (int k = 0; k < NT; k++) {
                    const float a = vt[k][t][c];
#pragma unroll
                    for (int j = 0; j < NV; j++)
                        acc[k][j] = fma((floatV)(a), w[j], acc[k][j]);
                }
            }
#pragma unroll
            for (int k = 0; k < NT; k++)
#pragma unroll
                for (int j = 0; j < NV; j++)
                    mt[k][j][t] = acc[k][j];
        }
#pragma unroll
        for (int k = 0; k < NT; k++) {
            const int p = q0 + k;
            if (p >= tiles)
                break;
            const int n = p / (TH * TW), th = (p / TW) % TH, tw = p % TW;
#pragma unroll
            for (int j = 0; j < NV; j++) {
                floatV m[T][T], out[WINO_M][WINO_M];
#pragma unroll
                for (int a = 0; a < T; a++)
#pragma unroll
                    for (int b = 0; b < T; b++)
                        m[a][b] = mt[k][j][a * T + b];
                TRANSFORM_2D(floatV, AT_1D, m, T, WINO_M, out);
                STORE_TILE(out, n, th, tw, f0 + j * VW);
            }
        }
    }
}
#endif

/* ---------------------------------------------------------------- the kernel gradient
 * dW of a stride-1 3x3 convolution by F(3x3, M x M), the dual of the forward algorithm: over
 * each tile of dy's grid, dW += G^T [(A e A^T) * (B^T d B)] G, with d the T x T input patch of
 * the tile (winograd_input, as the forward pass reads it) and e the M x M tile of dy, zero
 * outside OH x OW (cnnc/backends/opencl/winograd.py: bind_conv2d_grad_kernel_winograd):
 *
 *   winograd_input        V[t][p][c]  = (B^T d B)[t]
 *   winograd_dy           E[t][p][f]  = (A e A^T)[t]
 *   winograd_grad_gemm    Mt[part][t][c][f] = sum over the part's tiles p of V[t][p][c] E[t][p][f]
 *   winograd_grad_output  dw[kh][kw][c][f] = (G^T (sum over parts of Mt[part]) G)[kh][kw]
 *
 * A = (A^T)^T maps M points to T, G^T maps T points to 3: 2.25 (M = 2) or 4 (M = 4) times fewer
 * multiplications than the direct kernel gradient's 9 M^2 per tile and channel pair. (Not for
 * M = 7: winograd_dy and winograd_grad_output have no transforms for it, winograd.py's
 * GRAD_KERNEL_MS.) */
#if WINO_M == 2
#define A_1D(m, o)                                                                            \
    do {                                                                                      \
        o[0] = m[0];                                                                          \
        o[1] = m[0] + m[1];                                                                   \
        o[2] = m[0] - m[1];                                                                   \
        o[3] = -m[1];                                                                         \
    } while (0)
#define GT_1D(m, o)                                                                           \
    do {                                                                                      \
        o[0] = m[0] + 0.5f * (m[1] + m[2]);                                                   \
        o[1] = 0.5f * (m[1] - m[2]);                                                          \
        o[2] = 0.5f * (m[1] + m[2]) + m[3];                                                   \
    } while (0)
#elif WINO_M == 4
#define A_1D(m, o)                                                                            \
    do {                                                                                      \
        o[0] = m[0];                                                                          \
        o[1] = (m[0] + m[2]) + (m[1] + m[3]);                                                 \
        o[2] = (m[0] + m[2]) - (m[1] + m[3]);                                                 \
        o[3] = (m[0] + 4.0f * m[2]) + 2.0f * (m[1] + 4.0f * m[3]);                            \
        o[4] = (m[0] + 4.0f * m[2]) - 2.0f * (m[1] + 4.0f * m[3]);                            \
        o[5] = m[3];                                                                          \
    } while (0)
#define GT_1D(m, o)                                                                           \
    do {                                                                                      \
        o[0] = 0.25f * m[0] - (m[1] + m[2]) * (1.0f / 6.0f) + (m[3] + m[4]) * (1.0f / 24.0f); \
        o[1] = (m[2] - m[1]) * (1.0f / 6.0f) + (m[3] - m[4]) * (1.0f / 12.0f);                \
        o[2] = ((m[3] + m[4]) - (m[1] + m[2])) * (1.0f / 6.0f) + m[5];                        \
    } while (0)
#endif

/* Where E[t]'s element (tile q, filter f) is. -D EPACK=NR (winograd_grad_gemm's columns per
 * work-item): in panels of NR filters, [F / NR][tiles][NR], so that a work-item's NR filters of
 * each step are consecutive and its steps follow one another; 0: row-major [tiles][F]. */
#if EPACK
#define E_AT(q, f) (((f) / EPACK) * (tiles * EPACK) + (q) * EPACK + (f) % EPACK)
#define E_STEP EPACK
#else
#define E_AT(q, f) ((q) * F + (f))
#define E_STEP F
#endif

#ifdef WINOGRAD_DY
#if EPACK && EPACK % VW
#error "a packed E's panels hold whole vectors of the transform (VW divides EPACK)"
#endif
/* One work-item per (tile, VW filters), filters fastest; `tiles` tiles from tile0 on. With
 * EPACK, per group of GROUP_TILES tiles, panel by panel (E_ITEMS work-items): consecutive
 * work-items write consecutive floats of one panel, where filters fastest would write to a
 * panel a page or more apart every EPACK filters. */
__kernel void winograd_dy(__global const float *restrict dy, __global float *restrict e,
                          int tile0, int tiles)
{
    const int i = get_global_id(0);
#if EPACK
    if (i >= GROUPED(tiles) * (F / VW))
        return;
    const int per_panel = GROUP_TILES * (EPACK / VW), rem = i % (GROUP_TILES * (F / VW));
    const int q = i / (GROUP_TILES * (F / VW)) * GROUP_TILES + rem % per_panel / (EPACK / VW);
    const int f = rem / per_panel * EPACK + rem % (EPACK / VW) * VW;
    if (q >= tiles)
        return;
#else
    if (i >= tiles * (F / VW))
        return;
    const int q = i / (F / VW), f = (i % (F / VW)) * VW;
#endif
    const int p = tile0 + q;
    const int n = p / (TH * TW), th = (p / TW) % TH, tw = p % TW;
    floatV d[WINO_M][WINO_M], out[T][T];
#pragma unroll
    for (int a = 0; a < WINO_M; a++) {
        const int oh = th * WINO_M + a;
#pragma unroll
        for (int b = 0; b < WINO_M; b++) {
            const int ow = tw * WINO_M + b;
            d[a][b] = oh < OH && ow < OW ? LOADV(dy + ((n * OH + oh) * OW + ow) * F + f)
                                         : (floatV)(0.0f);
        }
    }
    TRANSFORM_2D(floatV, A_1D, d, WINO_M, T, out);
#pragma unroll
    for (int a = 0; a < T; a++)
#pragma unroll
        for (int b = 0; b < T; b++)
            STOREV(out[a][b], e + (a * T + b) * tiles * F + E_AT(q, f));
}
#endif

#ifdef WINOGRAD_GRAD_GEMM
#if VBLK
#define V_STEP VBLK
#else
#define V_STEP C
#endif
/* Mt[part][t] = V[t]^T (C x tiles) . E[t] (tiles x F) over the part's tiles: dim 0 row blocks
 * (channels c), dim 1 column blocks (filters f), dim 2 the T*T points times the parts (point
 * fastest). Each step loads MR consecutive channels of one tile's V row and NR filters of its
 * E row, as gemm.cl's matmul_tn. */
__kernel void winograd_grad_gemm(__global const float *restrict v,
                                 __global const float *restrict e, __global float *restrict mt,
                                 int tiles)
{
    const int m0 = BLOCK_ROW(), n0 = BLOCK_COL();
    const int t = get_global_id(2) % TT, part = get_global_id(2) / TT;
    const int parts = get_global_size(2) / TT;
    const int k_begin = part_begin(tiles, part, parts);
    const int k_end = part_begin(tiles, part + 1, parts);
    __global const float *vt = v + t * tiles * C;
    __global const float *b = e + t * tiles * F + E_AT(k_begin, n0);
    __global const float *a_rows[MR];
#pragma unroll
    for (int r = 0; r < MR; r++)
        a_rows[r] = vt + V_AT(k_begin, min(m0 + r, C - 1));
    floatV acc[MR][NV];
    zero_block(acc);
    for (int k = 0; k < k_end - k_begin; k++) {
        floatV bk[NV];
        float ak[MR];
        load_row(bk, b + k * E_STEP);
#pragma unroll
        for (int r = 0; r < MR; r++)
            ak[r] = a_rows[r][k * V_STEP];
        rank1_update(acc, ak, bk);
    }
    store_block(acc, 0, mt + (part * TT + t) * (C * F), m0, n0, C, F);
}
#endif

#ifdef WINOGRAD_GRAD_OUTPUT
/* One work-item per (channel c, VW filters), filters fastest: the parts' sums, then G^T . G. */
__kernel void winograd_grad_output(__global const float *restrict mt,
                                   __global float *restrict dw, int parts)
{
    const int i = get_global_id(0);
    if (i >= C * (F / VW))
        return;
    const int c = i / (F / VW), f = (i % (F / VW)) * VW;
    floatV m[T][T], out[3][3];
#pragma unroll
    for (int a = 0; a < T; a++)
#pragma unroll
        for (int b = 0; b < T; b++) {
            floatV s = (floatV)(0.0f);
            for (int part = 0; part < parts; part++)
                s += LOADV(mt + ((part * TT + a * T + b) * C + c) * F + f);
            m[a][b] = s;
        }
    TRANSFORM_2D(floatV, GT_1D, m, T, 3, out);
#pragma unroll
    for (int kh = 0; kh < 3; kh++)
#pragma unroll
        for (int kw = 0; kw < 3; kw++)
            STOREV(out[kh][kw], dw + ((kh * 3 + kw) * C + c) * F + f);
}
#endif
