/* Pooling as a convolution stores (-D POOL=1; bind_conv_maxpool.py): how a kernel folds the
 * cells of a 2x2 window, after the epilogue, into the one value it stores. Max by default; with
 * -D POOL_AVG=1 the mean, for windows that lie whole inside the map (the op's rule,
 * cnnc/ir/conv_maxpool.py: stores_pooled), so every sum is over four cells.
 *   POOL_START        the fold's start
 *   POOL_JOIN(m, e)   m with the cell e folded in
 *   POOL_END(m)       the stored value
 */
#ifndef POOL_STORE_H
#define POOL_STORE_H

#if POOL_AVG
#define POOL_START ((floatV)(0.0f))
#define POOL_JOIN(m, e) ((m) + (e))
#define POOL_END(m) ((m) * 0.25f)
#else
#define POOL_START ((floatV)(-INFINITY))
#define POOL_JOIN(m, e) max((m), (e))
#define POOL_END(m) (m)
#endif

#endif
