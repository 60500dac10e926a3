"""Convolution and pooling window arithmetic, shared by shape inference and every backend.

Keras/TensorFlow semantics: 'valid' uses only full windows (floor); 'same' gives ceil(n / stride)
outputs and pads the total shortfall with the smaller half before and the larger half after
(so stride 2 on an even size pads one extra row at the bottom and column at the right).
"""

from __future__ import annotations


def output_length(n: int, k: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length along one axis; may be <= 0 for a 'valid' window larger than the input."""
    if padding == "same":
        return (n + stride - 1) // stride
    span = dilation * (k - 1) + 1
    return (n - span) // stride + 1 if n >= span else 0


def pad_amounts(n: int, k: int, stride: int, padding: str, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zero padding along one axis."""
    if padding != "same":
        return (0, 0)
    out = output_length(n, k, stride, padding, dilation)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - n, 0)
    return (total // 2, total - total // 2)


def window_geometry(
    in_hw: tuple[int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    dilation: tuple[int, int] = (1, 1),
) -> dict[str, int]:
    """Everything a kernel needs about a 2-D window: sizes, output size, paddings.

    Keys: H, W, KH, KW, SH, SW, DH, DW, OH, OW, PT, PB, PL, PR. The OpenCL binding passes these
    as -D options; the NumPy backend uses the same numbers.
    """
    (h, w), (kh, kw), (sh, sw), (dh, dw) = in_hw, kernel, strides, dilation
    pt, pb = pad_amounts(h, kh, sh, padding, dh)
    pl, pr = pad_amounts(w, kw, sw, padding, dw)
    return {
        "H": h, "W": w, "KH": kh, "KW": kw, "SH": sh, "SW": sw, "DH": dh, "DW": dw,
        "OH": output_length(h, kh, sh, padding, dh), "OW": output_length(w, kw, sw, padding, dw),
        "PT": pt, "PB": pb, "PL": pl, "PR": pr,
    }
