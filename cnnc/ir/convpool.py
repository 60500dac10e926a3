"""Convolution and pooling window arithmetic, shared by shape inference and every backend.

Keras/TensorFlow semantics: 'valid' uses only full windows (floor); 'same' gives ceil(n / stride)
outputs and pads the total shortfall with the smaller half before and the larger half after
(so stride 2 on an even size pads one extra row at the bottom and column at the right).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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


# ---------------------------------------------------------------- pooling windows, ONNX's way

Pads = tuple[int, int, int, int]
"""Explicit pooling pads (top, bottom, left, right)."""


def pooled_length(n: int, k: int, stride: int, before: int, after: int, *,
                  dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length along one axis with explicit pads (ONNX and PyTorch pooling).

    With `ceil_mode` a last, partial window is kept unless it would start in the trailing
    padding (PyTorch's rule, which onnxruntime follows): every window keeps a real cell as
    long as the pads are smaller than the window. May be <= 0 when the window does not fit.
    """
    room = n + before + after - (dilation * (k - 1) + 1)
    if room < 0:
        return 0
    out = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + before:
        out -= 1
    return out


def pool_pads(
    in_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int], padding: str,
    pads: Pads | None, dilation: tuple[int, int] = (1, 1),
) -> Pads:
    """The explicit (top, bottom, left, right) pads a pooling layer means: its `pads` when
    given, else Keras' 'same' or 'valid' as pads. Both spellings meet here."""
    if pads is not None:
        return pads
    (pt, pb), (pl, pr) = (pad_amounts(in_hw[i], kernel[i], strides[i], padding, dilation[i])
                          for i in range(2))
    return (pt, pb, pl, pr)


def pool_geometry(
    in_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int], padding: str,
    *, pads: Pads | None = None, dilation: tuple[int, int] = (1, 1), ceil_mode: bool = False,
    count_include_pad: bool = False,
) -> dict[str, int]:
    """`window_geometry`'s keys for a pooling window with ONNX's options, plus CEIL (0/1) and
    COUNT_PAD (0/1: whether padding cells count in an average's divisor).

    PB and PR are the declared pads; with `ceil_mode` the last window may reach past them
    (those cells are outside the input and its padding: never read, never counted).
    """
    (h, w), (kh, kw), (sh, sw), (dh, dw) = in_hw, kernel, strides, dilation
    pt, pb, pl, pr = pool_pads(in_hw, kernel, strides, padding, pads, dilation)
    if pads is None and not ceil_mode:
        oh = output_length(h, kh, sh, padding, dh)
        ow = output_length(w, kw, sw, padding, dw)
    else:
        oh = pooled_length(h, kh, sh, pt, pb, dilation=dh, ceil_mode=ceil_mode)
        ow = pooled_length(w, kw, sw, pl, pr, dilation=dw, ceil_mode=ceil_mode)
    return {
        "H": h, "W": w, "KH": kh, "KW": kw, "SH": sh, "SW": sw, "DH": dh, "DW": dw,
        "OH": oh, "OW": ow, "PT": pt, "PB": pb, "PL": pl, "PR": pr,
        "CEIL": int(ceil_mode), "COUNT_PAD": int(count_include_pad),
    }


def pool_attrs_geometry(in_hw: tuple[int, int], attrs: Mapping[str, Any]) -> dict[str, int]:
    """`pool_geometry` for a maxpool2d/avgpool2d node's (or its gradient's) attributes."""
    strides = attrs["strides"] if attrs["strides"] is not None else attrs["pool_size"]
    return pool_geometry(
        in_hw, attrs["pool_size"], strides, attrs["padding"], pads=attrs["pads"],
        dilation=attrs["dilation_rate"], ceil_mode=attrs["ceil_mode"],
        count_include_pad=attrs.get("count_include_pad", False),
    )


def pool_is_onnx(attrs: Mapping[str, Any]) -> bool:
    """Whether a pooling uses any option beyond Keras' (pads, ceil_mode, dilation, counting)."""
    return (attrs["pads"] is not None or attrs["ceil_mode"] or attrs["dilation_rate"] != (1, 1)
            or attrs.get("count_include_pad", False))
