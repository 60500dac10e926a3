/* Row helpers for kernels that see a tensor as [rows, cols], cols the last axis (softmax.cl,
 * losses.cl): one work-item walks one row. */
#ifndef CNNC_ROWS_H
#define CNNC_ROWS_H

static float row_sum(__global const float *x, int cols)
{
    float s = 0.0f;
    for (int j = 0; j < cols; j++)
        s += x[j];
    return s;
}

static float row_max(__global const float *x, int cols)
{
    float m = -INFINITY;
    for (int j = 0; j < cols; j++)
        m = max(m, x[j]);
    return m;
}

/* log(sum(exp(x))) computed stably. */
static float log_sum_exp(__global const float *x, int cols)
{
    const float m = row_max(x, cols);
    float s = 0.0f;
    for (int j = 0; j < cols; j++)
        s += exp(x[j] - m);
    return m + log(s);
}

#endif
