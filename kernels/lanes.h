/* Sums across a floatV's lanes (VW from 1 to 16), for kernels that reduce a row held in vector
 * accumulators: layer_norm.cl, depthwise_layer_norm.cl. Include after common.h. */
#ifndef CNNC_LANES_H
#define CNNC_LANES_H

/* The sum of a vector's lanes, as a tree of halves: stored to a private array and added one
 * lane at a time, the four sums of a row took most of layer_norm_grad_input's time on pocl. */
static float lanes_sum(floatV v)
{
#if VW == 1
    return v;
#elif VW == 2
    return v.x + v.y;
#else
#if VW == 16
    const float8 h8 = v.lo + v.hi;
    const float4 h4 = h8.lo + h8.hi;
#elif VW == 8
    const float4 h4 = v.lo + v.hi;
#else
    const float4 h4 = v;
#endif
    const float2 h2 = h4.lo + h4.hi;
    return h2.x + h2.y;
#endif
}

#endif
