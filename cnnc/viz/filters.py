"""A convolution's learned kernels as a grid of small images (`cnnc show ... filters`).

Kernels are (kh, kw, in_channels, filters), as Keras stores them. A first layer on gray images
has one input channel, so each filter is one small image; on RGB images it is drawn in colour.
Deeper layers have many input channels per filter: each filter is drawn through one input
channel (the one it weighs most, or one chosen with `channel=`), or as the norm over all its
input channels (`channel="norm"`). Weights share one symmetric colour scale (zero is white),
so filters can be compared with each other.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from cnnc.errors import CnncError, did_you_mean
from cnnc.ir.graph import Graph, Node
from cnnc.viz.canvas import DPI, new_figure
from cnnc.viz.grid import Grid, grid_shape, mosaic, occupied, square_cols

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GAP_COLOUR = "#b0b0b0"  # between panels: distinct from white, which means a zero weight
WEIGHT_CMAP = "RdBu_r"  # negative blue, zero white, positive red
NORM_CMAP = "viridis"
TILE_PX = 72  # about how many pixels wide one filter is drawn
GAP_PX = 6  # about how many pixels between two filters


def _as_filters(node: Node, kernel: np.ndarray) -> np.ndarray:
    """The kernel as (kh, kw, inputs per filter, filters) for any convolution op."""
    if node.op == "depthwise_conv2d":
        # (kh, kw, channels, multiplier): output channel c * multiplier + m reads channel c only
        kh, kw, c, m = kernel.shape
        return kernel.reshape(kh, kw, 1, c * m)
    return kernel


def conv_layers(graph: Graph) -> list[Node]:
    """The layers that have filters to draw: convolutions with a 4-D kernel, in graph order."""
    return [n for n in graph.nodes
            if n.params and n.params[0].endswith("/kernel") and len(
                graph.state_map[n.params[0]].shape) == 4]


def pick_layer(graph: Graph, layer: str | None) -> Node:
    """The convolution named `layer`, or the first one; a clear error otherwise."""
    convs = conv_layers(graph)
    names = [n.name for n in convs]
    if not convs:
        raise CnncError(f"network '{graph.name}' has no convolution layers, so no filters to draw")
    if layer is None:
        return convs[0]
    if layer in names:
        return graph.node(layer)
    if layer in graph.node_map:
        node = graph.node(layer)
        kind = node.opdef.keras_name or node.op
        raise CnncError(f"layer '{layer}' is a {kind} layer; filters are drawn for convolutions",
                        hint=f"choose one of {', '.join(names)}")
    raise CnncError(f"no layer named '{layer}' in network '{graph.name}'",
                    hint=did_you_mean(layer, names) or f"its convolutions are {', '.join(names)}")


def _panels(kernel: np.ndarray, channel: int | str | None, first: bool
            ) -> tuple[np.ndarray, str]:
    """(panels (N, kh, kw[, 3]), what they show)."""
    cin, f = kernel.shape[2:]
    per_filter = np.moveaxis(kernel, 3, 0)  # (f, kh, kw, cin)
    if channel is None and cin == 1:
        return per_filter[..., 0], "weights"
    if channel is None and cin == 3 and first:
        return per_filter, "RGB weights"
    if channel == "norm":
        return np.sqrt((per_filter ** 2).sum(axis=3)), f"norm over {cin} input channels"
    if channel is None:
        # The input channel each filter weighs most: where its strongest pattern is.
        strongest = np.argmax((per_filter ** 2).sum(axis=(1, 2)), axis=1)
        what = "weights on each filter's strongest input channel"
        return per_filter[np.arange(f), :, :, strongest], what
    if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel < cin:
        raise CnncError(f"channel must be an input channel 0..{cin - 1} or 'norm', "
                        f"got {channel!r}")
    return per_filter[..., channel], f"weights on input channel {channel}"


def filters_figure(kernel: np.ndarray, *, layer: str, kind: str = "Conv2D",
                   channel: int | str | None = None, first: bool = True) -> Figure:
    """The grid of filters of one kernel (kh, kw, in_channels, filters).

    channel: None (the only channel, RGB for a first layer on colour images, else each
    filter's strongest input channel), an input channel index, or 'norm'.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise CnncError(f"a convolution kernel is (kh, kw, in_channels, filters); got shape "
                        f"{kernel.shape}")
    kh, kw, cin, f = kernel.shape
    panels, what = _panels(kernel, channel, first)
    rgb = panels.ndim == 4
    rows, cols = grid_shape(f, square_cols(f))
    scale = max(4, min(32, TILE_PX // max(kh, kw)))  # screen pixels per kernel pixel
    # Each kernel pixel drawn as up x up mosaic pixels, so that the one-pixel gaps between
    # panels are a few screen pixels wide rather than a whole kernel pixel.
    up = max(1, scale // GAP_PX)
    panels = panels.repeat(up, axis=1).repeat(up, axis=2)
    kh_up, kw_up = kh * up, kw * up
    scale = scale / up
    image = mosaic(panels, cols)
    alpha = occupied(f, cols, kh_up, kw_up).astype(np.float64)  # empty cells: background
    limit = float(np.abs(panels).max()) or 1.0
    norm_mode = channel == "norm"
    if rgb:
        note = f"mid-grey is zero; shared scale ±{limit:.3g}"
    else:
        note = "one colour scale for all filters" + ("" if norm_mode else ", zero is white")
    img_w, img_h = image.shape[1] * scale / DPI, image.shape[0] * scale / DPI
    plural = "s" if cin != 1 else ""
    title = (f"{layer} ({kind}): {f} filters of {kh}x{kw} over {cin} input channel{plural}, "
             f"kernel {kh}x{kw}x{cin}x{f}")
    left, right, bottom = 0.55, 1.35, 0.45  # inches: row labels; colour bar; margin
    # Wide enough for the title at 12 points (about 0.1 inch a character), the grid, the bar.
    width = min(max(img_w + left + right, len(title) * 0.1 + 1.0, 6.0), 16.0)
    note = textwrap.fill(f"{what}; {note}. Filter number = row label + column label.",
                         width=int((width - 0.8) * 13))  # about 13 characters an inch at 9 pt
    top = 0.75 + 0.16 * note.count("\n") + 0.3
    height = img_h + top + bottom
    fig = new_figure(width, height)
    ax = fig.add_axes((left / width, bottom / height, img_w / width, img_h / height))
    if rgb:
        shown = np.clip(image / (2 * limit) + 0.5, 0, 1)
        shown[np.isnan(image)] = 0.69  # the gap colour, grey
        ax.imshow(np.dstack([shown, alpha]), interpolation="nearest")
    else:
        from matplotlib import colormaps

        cmap = colormaps[NORM_CMAP if norm_mode else WEIGHT_CMAP].with_extremes(bad=GAP_COLOUR)
        vmin, vmax = (0.0, limit) if norm_mode else (-limit, limit)
        im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha,
                       interpolation="nearest")
        bar_h = min(img_h, 4.0)  # beside the top of the grid, where the eye starts
        cax = fig.add_axes(((left + img_w + 0.25) / width, (bottom + img_h - bar_h) / height,
                            0.18 / width, bar_h / height))
        fig.colorbar(im, cax=cax, label="norm" if norm_mode else "weight")
    # Row and column labels instead of a number on every panel: filter = row + column.
    ax.set_xticks([c * (kw_up + 1) + (kw_up - 1) / 2 for c in range(cols)],
                  [str(c) for c in range(cols)])
    ax.set_yticks([r * (kh_up + 1) + (kh_up - 1) / 2 for r in range(rows)],
                  [str(r * cols) for r in range(rows)])
    ax.tick_params(length=0, labelsize=8, labeltop=True, labelbottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.cnnc_grids = [Grid(title, image, kh_up, kw_up, f)]
    fig.suptitle(title, x=0.5 / width, y=1 - 0.18 / height, ha="left", va="top", fontsize=12)
    fig.text(0.5 / width, 1 - 0.55 / height, note, ha="left", va="top", fontsize=9,
             color="#444444", linespacing=1.3)
    return fig


def show_filters(model, layer: str | None = None, *, channel: int | str | None = None
                 ) -> Figure:
    """The filters of a compiled model's convolution `layer` (default: the first one)."""
    return filters_of(model.spec_graph, model.get_weights(), layer, channel=channel)


def filters_of(graph: Graph, weights: Mapping[str, np.ndarray], layer: str | None = None, *,
               channel: int | str | None = None) -> Figure:
    """The filters of `layer` (default: the first convolution) from a weights mapping."""
    node = pick_layer(graph, layer)
    kernel = _as_filters(node, np.asarray(weights[node.params[0]]))
    first = node is conv_layers(graph)[0]
    return filters_figure(kernel, layer=node.name, kind=node.opdef.keras_name or node.op,
                          channel=channel, first=first)
