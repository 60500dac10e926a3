"""Filters (cnnc/viz/filters.py): one panel per filter, a shared symmetric scale, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from png_checks import check_figure

from cnnc.errors import CnncError
from cnnc.viz.canvas import save_png
from cnnc.viz.filters import filters_figure, pick_layer
from cnnc.viz.grid import count_panels


def _grid(fig):
    (grid,) = fig.cnnc_grids
    return grid


def _panel_values(grid) -> list[np.ndarray]:
    """Each panel's pixels, read back out of the drawn mosaic."""
    image, h, w = grid.image, grid.panel_h, grid.panel_w
    cols = (image.shape[1] + 1) // (w + 1)
    return [image[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w]
            for r, c in (divmod(i, cols) for i in range(grid.count))]


def test_first_layer_filters_are_one_panel_each(small_model, tmp_path):
    fig = small_model.show_filters()
    path = save_png(fig, tmp_path / "filters.png")
    check_figure(fig, path)
    grid = _grid(fig)
    assert grid.title.startswith("conv2d (Conv2D): 6 filters of 3x3 over 1 input channel")
    assert count_panels(grid.image, grid.panel_h, grid.panel_w) == 6
    # The panels are the kernel's filters (each kernel pixel drawn as a square block).
    kernel = small_model.get_weights()["conv2d/kernel"]
    up = grid.panel_h // 3
    for i, panel in enumerate(_panel_values(grid)):
        assert np.allclose(panel[::up, ::up], kernel[:, :, 0, i])
    # One symmetric colour scale for every panel: zero in the middle of the colour map.
    ax = fig.axes[0]
    vmin, vmax = ax.images[0].get_clim()
    assert vmin == -vmax == -np.abs(kernel).max()


def test_deeper_layers_draw_one_channel_or_the_norm(small_model):
    kernel = small_model.get_weights()["conv2d_1/kernel"]  # (3, 3, 6, 8)
    strongest = _grid(small_model.show_filters("conv2d_1"))
    chosen = _grid(small_model.show_filters("conv2d_1", channel=2))
    norm = _grid(small_model.show_filters("conv2d_1", channel="norm"))
    up = strongest.panel_h // 3
    for i, (s, c, n) in enumerate(zip(_panel_values(strongest), _panel_values(chosen),
                                      _panel_values(norm))):
        energy = (kernel[:, :, :, i] ** 2).sum(axis=(0, 1))
        assert np.allclose(s[::up, ::up], kernel[:, :, int(np.argmax(energy)), i])
        assert np.allclose(c[::up, ::up], kernel[:, :, 2, i])
        assert np.allclose(n[::up, ::up], np.sqrt((kernel[:, :, :, i] ** 2).sum(axis=2)))
    assert strongest.count == 8 and "8 filters of 3x3 over 6 input channels" in strongest.title


def test_rgb_first_layer_is_drawn_in_colour():
    kernel = np.random.default_rng(1).normal(size=(5, 5, 3, 10))
    fig = filters_figure(kernel, layer="conv")
    pixels = check_figure(fig)
    assert _grid(fig).count == 10
    assert (np.abs(pixels[..., 0].astype(int) - pixels[..., 2]) > 60).any()  # not gray


def test_large_layers_stay_a_readable_size():
    fig = filters_figure(np.random.default_rng(2).normal(size=(3, 3, 128, 256)), layer="c",
                         first=False)
    grid = _grid(fig)
    assert count_panels(grid.image, grid.panel_h, grid.panel_w) == 256
    w, h = fig.get_size_inches()
    assert w <= 16 and h <= 16


@pytest.mark.parametrize("layer, message, hint", [
    ("conv2e", "no layer named 'conv2e' in network 'small'", "did you mean 'conv2d'?"),
    ("dense", "layer 'dense' is a Dense layer; filters are drawn for convolutions",
     "choose one of conv2d, conv2d_1"),
])
def test_a_layer_without_filters_is_a_clear_error(small_model, layer, message, hint):
    with pytest.raises(CnncError) as err:
        pick_layer(small_model.spec_graph, layer)
    assert err.value.message == message and err.value.hint == hint


def test_a_channel_out_of_range_is_a_clear_error(small_model):
    with pytest.raises(CnncError, match=r"channel must be an input channel 0\.\.5 or 'norm'"):
        small_model.show_filters("conv2d_1", channel=6)


def test_depthwise_filters_are_one_panel_per_output_channel():
    import cnnc

    model = cnnc.compile("network dw\ninput 8x8x3\ndepthwise_conv2d 3 depth_multiplier=2\n",
                         backend="numpy")
    fig = model.show_filters()
    check_figure(fig)
    grid = _grid(fig)
    assert grid.count == 6 and "6 filters of 3x3 over 1 input channel" in grid.title
    kernel = model.get_weights()["depthwise_conv2d/kernel"]  # (3, 3, 3 channels, 2)
    up = grid.panel_h // 3
    for i, panel in enumerate(_panel_values(grid)):  # output channel c * 2 + m
        assert np.allclose(panel[::up, ::up], kernel[:, :, i // 2, i % 2])
