"""Feature maps: what each convolution and pooling layer makes of one image (`cnnc show ... maps`).

The input comes first, then for each convolution and pooling layer in order the grid of its
output channels, every layer drawn at the same scale (one input pixel is as wide everywhere),
so the maps visibly shrink as pooling halves them: 28x28, 14x14, 7x7, 3x3 in the seed model.
The maps come from the model's own inference graph on its own backend (less the fusions that
never write a convolution's map: maps_graph), asked to keep the values of those layers besides
its outputs.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnc.errors import CnncError, InputError
from cnnc.inputs import input_feeds
from cnnc.ir.graph import Graph, Node
from cnnc.ir.ops import OPS, layer_of
from cnnc.passes.pipeline import inference_pipeline, run_pipeline
from cnnc.viz.canvas import DPI, new_figure
from cnnc.viz.grid import Grid, grid_shape, mosaic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Whether a kind of layer (cnnc/ir/ops.py LAYER_KINDS) has its output drawn, for every kind
# (tests/viz/test_viz_tables.py holds it to the table): convolutions and pooling, whose outputs
# are images. A fused op is drawn as the layer it stands for (`layer_of`): conv2d_bn's map is
# its batch norm's (and fused activation's) output, conv2d_add's the residual block's join.
MAP_KINDS: dict[str, bool] = {
    "input": False,  # drawn first, as the image itself
    "convolution": True,
    "pooling": True,
    "global_pooling": False,  # 1x1 maps
    "dense": False,
    "merging": False,
    "normalization": False,
    "activation": False,
    "regularization": False,
    "reshaping": False,  # the maps before it, moved or with a border
}
MAPS_CMAP = "viridis"
TARGET_COLS = 16  # the widest layer's grid: at most this many maps per row
WIDTH_PX = 1200  # about how wide the grids are drawn
MAX_SCALE = 12.0  # screen pixels per map pixel, at most (tiny inputs)
WIDTH_SLACK = 1.15  # a grid may be this much wider than the widest layer's, to fill its rows


@dataclass(frozen=True)
class ImageInput:
    """One image as the model takes it, and what to call it."""

    x: np.ndarray  # (1, H, W, C) float32
    name: str  # 'test image 123', or the file
    label: int | None = None  # the true class, when known
    notes: tuple[str, ...] = ()  # things a user should know (an inverted photo)


def draws_maps(op: str) -> bool:
    """Whether nodes of `op` have their output drawn (where it is an image): by the kind of the
    layer it stands for. Other ops (training graphs') are never drawn."""
    kind = OPS[layer_of(op)].kind
    return kind is not None and MAP_KINDS[kind]


# Inference passes that fuse a drawn layer's map away into the layer reading it (its value never
# written): the maps come from the inference graph without them (maps_graph).
MAP_HIDING_PASSES = ("fuse_conv_maxpool", "fuse_conv_concat")


def maps_graph(model) -> Graph:
    """The model's inference graph with every convolution's map kept: its spec graph through
    the inference pipeline but MAP_HIDING_PASSES (the same layers, values and names)."""
    passes = [p for p in inference_pipeline() if p.name not in MAP_HIDING_PASSES]
    return run_pipeline(model.spec_graph, passes)


def map_layers(graph: Graph) -> list[Node]:
    """The nodes whose output is drawn: convolutions and pooling with an image output."""
    return [n for n in graph.nodes if draws_maps(n.op) and n.shape is not None
            and len(n.shape) == 4]


def layer_outputs(model, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """The values of the nodes `names` of maps_graph (and its outputs) for inputs x."""
    graph = maps_graph(model)
    wanted = tuple(dict.fromkeys([*names, *graph.outputs]))
    feeds = input_feeds(graph, x)
    exe = model.backend.compile(graph.replace(outputs=wanted), len(next(iter(feeds.values()))))
    return exe.run(feeds, list(wanted), step=model.step)


def resolve_image(model, image: Any, *, data_dir: str | None = None,
                  invert: str = "auto") -> ImageInput:
    """An image given as an array (H, W, C) or (1, H, W, C), 'test:N' (the spec's dataset's
    test set), or a PNG/JPEG/.npy/IDX file (converted as `cnnc predict` converts it)."""
    shape = tuple(int(d) for d in model.graph.shape_of(model.graph.inputs[0])[1:])
    if isinstance(image, str) and image.startswith("test:"):
        return _test_image(model, image, shape, data_dir)
    if isinstance(image, str):
        from cnnc.data.dataset import raw_pixels
        from cnnc.data.images import load_inputs

        inputs = load_inputs([image], shape, invert=invert, raw=raw_pixels(model.graph))
        return ImageInput(inputs.x[:1], inputs.names[0], notes=inputs.notes)
    x = np.asarray(image)
    if x.shape == shape:
        x = x[None]
    if x.ndim != len(shape) + 1 or x.shape[0] != 1:
        raise InputError(f"expected one image of shape {shape}, got an array of shape {x.shape}")
    return ImageInput(x, "the image")


def _test_image(model, text: str, shape: tuple[int, ...], data_dir: str | None) -> ImageInput:
    from cnnc.data.dataset import load_configured, raw_pixels, to_inputs

    index_text = text[len("test:"):]
    if not index_text.isdigit():
        raise InputError(f"'{text}': expected test:N with N a test-set index, e.g. test:123")
    dataset = load_configured(model.train_config, data_dir, shape, raw=raw_pixels(model.graph))
    index = int(index_text)
    count = len(dataset.test)
    if index >= count:
        raise InputError(f"'{text}': the {dataset.name} test set has {count:,} images "
                         f"(0..{count - 1})")
    x = to_inputs(dataset.test.images[index:index + 1], shape, raw_pixels(model.graph))
    return ImageInput(x, f"test image {index}", int(dataset.test.labels[index]))


def _scaled(maps: np.ndarray) -> tuple[np.ndarray, int]:
    """(channels, h, w) maps each scaled to [0, 1] by its own range, and how many are flat."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    flat = span[:, 0, 0] <= 0
    out = np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0.0)
    return out, int(flat.sum())


def _kind(node: Node) -> str:
    kind = node.opdef.keras_name or node.op
    activation = node.attrs.get("activation", "linear")
    return f"{kind} + {activation}" if activation != "linear" else kind


def _columns(count: int, w: int, width: int) -> int:
    """Maps per row for `count` maps of width w in about `width` pixels: a number that fills
    every row when one comes close (64 maps of 14x14: 32 a row, in 2 rows), else as many as fit.
    """
    fit = max(1, min(count, width // (w + 1)))
    wider = int(width * WIDTH_SLACK) // (w + 1)
    even = max((d for d in range(1, min(count, wider) + 1) if count % d == 0), default=1)
    return even if even >= 0.6 * fit else fit


@dataclass(frozen=True)
class _Row:
    title: str
    image: np.ndarray  # the mosaic (NaN: background), or the input image
    rgb: bool = False
    panel: tuple[int, int, int] = (0, 0, 1)  # (h, w, count) of the panels in the mosaic


def maps_figure(image: np.ndarray, layers: list[tuple[Node, np.ndarray]], *, network: str,
                source: str, caption: str = "") -> Figure:
    """The input image (H, W, C) and each layer's maps (h, w, c) as grids at one scale.

    Returns the figure; `figure.cnnc_grids` holds each row as a Grid, the input first.
    """
    rows: list[_Row] = []
    h0, w0, c0 = image.shape
    shown = image[..., 0] if c0 == 1 else np.clip(image[..., :3], 0, 1)
    rows.append(_Row(f"input {h0}x{w0}x{c0}" + (f": {caption}" if caption else ""), shown,
                     rgb=c0 != 1, panel=(h0, w0, 1)))
    # The widest grid sets the scale: TARGET_COLS maps of the largest layer side by side.
    width_maps = max([min(v.shape[2], TARGET_COLS) * (v.shape[1] + 1) for _, v in layers]
                     + [w0])
    for node, value in layers:
        h, w, c = value.shape
        cols = _columns(c, w, width_maps)
        scaled, flat = _scaled(np.moveaxis(value, 2, 0))
        cols = grid_shape(c, cols)[1]
        note = f"; {flat} constant (drawn dark)" if flat else ""
        rows.append(_Row(f"{node.name} ({_kind(node)}): {h}x{w}, {c} maps{note}",
                         mosaic(scaled, cols), panel=(h, w, c)))
    scale = min(MAX_SCALE, WIDTH_PX / width_maps)
    title_in, gap_in, left_in = 0.32, 0.12, 0.3
    grid_w = max(r.image.shape[1] for r in rows) * scale / DPI
    width = max(grid_w + 2 * left_in, 7.0)
    note = textwrap.fill(
        "Each map is scaled to its own range: dark lowest, yellow highest. All layers are drawn "
        "at one scale, so the maps shrink as pooling and strides shrink them.",
        width=int((width - 2 * left_in) * 13))  # about 13 characters an inch at 9 points
    top_in = 0.62 + 0.17 * (note.count("\n") + 1)
    heights = [r.image.shape[0] * scale / DPI for r in rows]
    height = top_in + sum(h + title_in + gap_in for h in heights) + 0.1
    fig = new_figure(width, height)
    from matplotlib import colormaps

    cmap = colormaps[MAPS_CMAP].with_extremes(bad="white")
    y = height - top_in
    for row, h_in in zip(rows, heights):
        w_in = row.image.shape[1] * scale / DPI
        fig.text(left_in / width, (y - 0.05) / height, row.title, ha="left", va="top",
                 fontsize=10)
        y -= title_in
        ax = fig.add_axes((left_in / width, (y - h_in) / height, w_in / width, h_in / height))
        if row is rows[0]:
            ax.imshow(row.image, cmap=None if row.rgb else "gray", vmin=0, vmax=1,
                      interpolation="nearest")
        else:
            ax.imshow(row.image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        y -= h_in + gap_in
    fig.suptitle(f"Feature maps of {network} for {source}", x=left_in / width,
                 y=1 - 0.12 / height, ha="left", va="top", fontsize=13)
    fig.text(left_in / width, 1 - 0.45 / height, note, ha="left", va="top", fontsize=9,
             color="#444444", linespacing=1.3)
    fig.cnnc_grids = [Grid(r.title, r.image, *r.panel) for r in rows]
    return fig


def _class_name(model, index: int) -> str:
    from cnnc.data.catalog import DATASETS

    info = DATASETS.get(model.train_config.dataset)
    names = info.class_names if info else ()
    return names[index] if index < len(names) else f"class {index}"


def show_maps(model, image: Any, *, data_dir: str | None = None, invert: str = "auto"
              ) -> Figure:
    """The feature maps of a compiled model for one image: an array, 'test:N' or a file."""
    picked = image if isinstance(image, ImageInput) else resolve_image(
        model, image, data_dir=data_dir, invert=invert)
    nodes = map_layers(maps_graph(model))
    if not nodes:
        raise CnncError(f"network '{model.graph.name}' has no convolution or pooling layers, "
                        "so no feature maps to draw")
    values = layer_outputs(model, picked.x, [n.name for n in nodes])
    caption = ""
    out = values[model.graph.outputs[0]][0]
    if out.ndim == 1 and out.size > 1:
        best = int(np.argmax(out))
        caption = f"predicted {_class_name(model, best)} ({out[best]:.0%})"
        if picked.label is not None:
            caption = f"true {_class_name(model, picked.label)}, {caption}"
    from cnnc.data.dataset import raw_pixels

    # A model that scales its own pixels was given 0..255 values: drawn in [0, 1] like others'.
    shown = picked.x[0] / np.float32(255.0) if raw_pixels(model.graph) else picked.x[0]
    return maps_figure(shown, [(n, values[n.name][0]) for n in nodes],
                       network=model.graph.name, source=picked.name, caption=caption)
