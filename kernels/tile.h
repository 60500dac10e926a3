/* The local-memory tiled GEMM loop, for GPUs (-D LOCAL_TILE=1): conv2d.cl and gemm.cl use it.
 *
 * A work-group of TX x TY work-items computes a tile of BM = TY*MR rows by BN = TX*NR columns;
 * each work-item still holds an MR x NR register block. The reduction runs in steps of KT: the
 * group copies a KT x BM slice of A and a KT x BN slice of B into local memory, waits, and every
 * work-item accumulates its block from there, so each global value is read once per tile instead
 * of once per work-item. On a CPU the copies and barriers only cost: bind.py enables this for
 * GPUs alone (and tests it on every device).
 *
 * The including kernel defines, before TILED_GEMM(acc):
 *   KDIM           the reduction length
 *   A_ELEM(m, k)   element (m, k) of A, 0.0f outside the matrix or in padding
 *   B_ELEM(k, n)   element (k, n) of B, 0.0f outside
 * and the variables m_tile and n_tile (the first row and column of the group's tile).
 */
#ifndef CNNC_TILE_H
#define CNNC_TILE_H

#define BM (TY * MR)
#define BN (TX * NR)

#define TILED_GEMM(acc)                                                                       \
    __local float a_tile[KT][BM];                                                             \
    __local float b_tile[KT][BN];                                                             \
    {                                                                                         \
        const int lx = get_local_id(0), ly = get_local_id(1);                                 \
        const int lid = ly * TX + lx;                                                         \
        for (int k0 = 0; k0 < KDIM; k0 += KT) {                                               \
            /* consecutive work-items read consecutive k: A is contiguous along k */          \
            for (int i = lid; i < KT * BM; i += TX * TY)                                      \
                a_tile[i % KT][i / KT] = A_ELEM(m_tile + i / KT, k0 + i % KT);                \
            for (int i = lid; i < KT * BN; i += TX * TY)                                      \
                b_tile[i / BN][i % BN] = B_ELEM(k0 + i / BN, n_tile + i % BN);                \
            barrier(CLK_LOCAL_MEM_FENCE);                                                     \
            for (int kk = 0; kk < KT; kk++) {                                                 \
                floatV b[NV];                                                                 \
                for (int v = 0; v < NV; v++)                                                  \
                    b[v] = LOADV(&b_tile[kk][lx * NR + v * VW]);                              \
                for (int r = 0; r < MR; r++) {                                                \
                    const float a = a_tile[kk][ly * MR + r];                                  \
                    for (int v = 0; v < NV; v++)                                              \
                        acc[r][v] += a * b[v];                                                \
                }                                                                             \
            }                                                                                 \
            barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        }                                                                                     \
    }

#endif
