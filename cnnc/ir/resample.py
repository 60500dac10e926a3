"""Resampling layer ops (Keras UpSampling2D, Cropping2D) and their gradient ops, in the op table.

UpSampling2D repeats (nearest) or interpolates (bilinear) each image by integer factors; Keras 3's
bilinear is half-pixel centred without antialiasing: output row o reads input row
(o + 0.5) / s - 0.5, clamped to [0, H - 1], weighting its two neighbours linearly; this is
PyTorch's Upsample(mode='bilinear', align_corners=False) and ONNX Resize(linear, half_pixel).
Cropping2D cuts rows and columns off the borders; its gradient is zero padding.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.gradients import INPUT_SHAPE
from cnnc.ir.layers import side_pairs
from cnnc.ir.ops import OpDef, register
from cnnc.ir.shapes import Shape, numel, shape_str

INTERPOLATIONS = ("nearest", "bilinear")


def _image(x: Shape) -> None:
    if len(x) != 4:
        raise ShapeError(f"expects a rank-4 input (batch, height, width, channels), got shape "
                         f"{shape_str(x)}")


def _cropping_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    _image(x)
    (t, b), (left, r) = attrs["cropping"]
    h, w = x[1] - t - b, x[2] - left - r
    if h <= 0 or w <= 0:
        raise ShapeError(f"cropping {attrs['cropping']} leaves nothing of a "
                         f"{x[1]}x{x[2]}x{x[3]} input")
    return (x[0], h, w, x[3])


register(OpDef(
    name="cropping2d", group="layer", kind="reshaping", keras_name="Cropping2D",
    aliases=("Cropping2D", "crop"),
    args=(Arg("cropping", side_pairs, ((0, 0), (0, 0)), positional=True,
              doc="n, (rows, columns) or ((top, bottom), (left, right))"),),
    arity=(1, 1), infer=_cropping_infer,
    doc="Rows and columns cut off the borders: y[n, i, j, c] = x[n, i + top, j + left, c].",
))


def _upsampling_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    _image(x)
    sh, sw = attrs["size"]
    return (x[0], x[1] * sh, x[2] * sw, x[3])


def _upsampling_flops(attrs: Attrs, shapes: tuple[Shape, ...], out: Shape | None) -> int:
    # Bilinear: two lerps along width and one along height, 3 multiply-adds.
    return 0 if attrs["interpolation"] == "nearest" else 6 * numel(out)


UPSAMPLING_ARGS = (
    Arg("size", A.pair, (2, 2), positional=True, doc="integer factors (rows, columns)"),
    Arg("interpolation", A.choice(*INTERPOLATIONS), "nearest", words=INTERPOLATIONS),
)

register(OpDef(
    name="upsampling2d", group="layer", kind="reshaping", keras_name="UpSampling2D",
    aliases=("UpSampling2D", "upsample"),
    args=UPSAMPLING_ARGS, arity=(1, 1), infer=_upsampling_infer, flops=_upsampling_flops,
    reduction=lambda attrs, shapes: 4 if attrs["interpolation"] == "bilinear" else 1,
    doc="Each image enlarged by integer factors: rows and columns repeated (nearest) or "
        "interpolated with half-pixel centres, edges clamped (bilinear, Keras 3 = PyTorch "
        "align_corners=False).",
))


def _upsampling_grad_terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    sh, sw = attrs["size"]
    # Bilinear: each input pixel gathers from up to (2 s) x (2 s) outputs.
    return sh * sw * (4 if attrs["interpolation"] == "bilinear" else 1)


register(OpDef(
    name="upsampling2d_grad", group="gradient", args=(*UPSAMPLING_ARGS, INPUT_SHAPE),
    arity=(1, 1), infer=lambda attrs, shapes: (shapes[0][0], *attrs["input_shape"]),
    reduction=_upsampling_grad_terms,
    doc="dx of upsampling2d: each output's gradient handed back to the input pixels it read, "
        "with the weights it read them with. Input (dy,).",
))
