"""ONNX front end: an ONNX convolution or pooling window (pads, auto_pad, ceil_mode) read exactly.

ONNX states paddings explicitly; cnnc's layers state Keras' 'valid' or 'same'. `read_window`
works out which of the two an ONNX window equals, if any, so that lowering can use the layer as
it is, and otherwise the explicit (begin, end) zero padding that reproduces it. Padding beyond
the last window an exporter may declare (PyTorch's pads=1 on a stride-2, even-sized input) is
dropped first: no output reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnc.ir.convpool import output_length, pad_amounts, pooled_length


class WindowError(ValueError):
    """A window cnnc cannot read: the message names the attribute and its value."""


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]  # (begin, end) per axis, as the outputs use
    declared: tuple[tuple[int, int], tuple[int, int]]  # (begin, end) per axis, as declared
    out: tuple[int, int]
    modes: frozenset[str]  # the Keras paddings ('valid', 'same') that give the same outputs

    @property
    def padded(self) -> bool:
        return any(p for axis in self.pads for p in axis)


def _pair(value: object, name: str, default: tuple[int, int]) -> tuple[int, int]:
    if value is None:
        return default
    if not isinstance(value, tuple) or len(value) != 2 or not all(
            isinstance(v, int) and v > 0 for v in value):
        raise WindowError(f"{name}={value!r}: cnnc reads 2-D windows with positive sizes")
    return value


def read_window(attrs: dict, in_hw: tuple[int, int], kernel: tuple[int, int], *,
                ceil_mode: bool = False) -> Window:
    """The window of a Conv/MaxPool/AveragePool node on an input of `in_hw` (height, width)."""
    strides = _pair(attrs.get("strides"), "strides", (1, 1))
    dilations = _pair(attrs.get("dilations"), "dilations", (1, 1))
    auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    pads = attrs.get("pads", (0, 0, 0, 0))
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise WindowError(f"auto_pad={auto_pad!r} is not an ONNX padding mode")
    if not isinstance(pads, tuple) or len(pads) != 4 or any(
            not isinstance(p, int) or p < 0 for p in pads):
        raise WindowError(f"pads={pads!r}: expected 4 non-negative integers for a 2-D window")
    declared, used, outs = [], [], []
    same = True
    for axis in range(2):
        n, k, s, d = in_hw[axis], kernel[axis], strides[axis], dilations[axis]
        span = d * (k - 1) + 1
        if auto_pad == "VALID":
            begin, end = 0, 0
        elif auto_pad.startswith("SAME"):
            total = max((-(-n // s) - 1) * s + span - n, 0)
            small, large = total // 2, total - total // 2
            begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
        else:
            begin, end = pads[axis], pads[axis + 2]
        room = n + begin + end - span
        if room < 0:
            raise WindowError(f"the {k}x window (dilated to {span}) does not fit the input's "
                              f"{n} cells with pads ({begin}, {end})")
        out = (-(-room // s) if ceil_mode else room // s) + 1
        if ceil_mode and (out - 1) * s >= n + begin:
            out -= 1  # the last window must start inside the input or its leading padding
        used_end = max(0, (out - 1) * s + span - n - begin)
        declared.append((begin, end))
        used.append((begin, used_end))
        outs.append(out)
        same = same and out == output_length(n, k, s, "same", d) and (begin, used_end) == \
            pad_amounts(n, k, s, "same", d)
    modes = set()
    if all(p == (0, 0) for p in used):
        modes.add("valid")
    if same:
        modes.add("same")
    return Window(kernel, strides, dilations, (used[0], used[1]), (declared[0], declared[1]),
                  (outs[0], outs[1]), frozenset(modes))


def pool_pads(win: Window, in_hw: tuple[int, int], ceil_mode: bool
              ) -> tuple[tuple[int, int, int, int], bool]:
    """The (top, bottom, left, right) pads and ceil_mode of a pooling layer that computes the
    ONNX window `win` exactly: the declared pads, less any trailing padding no window reaches
    (so pads stay smaller than the window), and ceil_mode only where it adds a window."""
    ends, ceil_needed = [], False
    for axis in range(2):
        (begin, end), (_, used) = win.declared[axis], win.pads[axis]
        # A ceil_mode window may reach past the declared pads: those cells never count.
        end = min(end, used)
        n, k, s, d = in_hw[axis], win.kernel[axis], win.strides[axis], win.dilations[axis]
        floor_out = pooled_length(n, k, s, begin, end, dilation=d)
        ceil_out = pooled_length(n, k, s, begin, end, dilation=d, ceil_mode=ceil_mode)
        if ceil_out != win.out[axis]:
            raise WindowError(f"pads {win.declared} give {ceil_out} windows along axis {axis}, "
                              f"not {win.out[axis]}")
        ceil_needed = ceil_needed or ceil_out != floor_out
        ends.append(end)
    (t, _), (left, _) = win.declared
    return (t, ends[0], left, ends[1]), ceil_needed


__all__ = ["Window", "WindowError", "pool_pads", "read_window"]
