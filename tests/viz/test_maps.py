"""Feature maps (cnnc/viz/maps.py): one panel per channel and layer, from the model's own run."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from png_checks import check_figure

from cnnc.errors import CnncError
from cnnc.passes.pipeline import inference_pipeline, run_pipeline
from cnnc.testing.nets import run
from cnnc.viz.grid import count_panels
from cnnc.viz.maps import layer_outputs, map_layers, maps_graph, resolve_image


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((12, 12, 1)).astype(np.float32)


def test_one_panel_per_channel_and_layer(small_model):
    fig = small_model.show_maps(_image())
    check_figure(fig)
    grids = fig.cnnc_grids
    # the input, then conv2d with its batch norm and relu folded in, named after the activation
    # (12x12x6), max_pooling2d (6x6x6), conv2d_1 (6x6x8), pooling (3x3x8)
    want = [("input", 12, 12, 1), ("activation", 12, 12, 6), ("max_pooling2d", 6, 6, 6),
            ("conv2d_1", 6, 6, 8), ("max_pooling2d_1", 3, 3, 8)]
    assert len(grids) == len(want)
    for grid, (name, h, w, c) in zip(grids, want):
        assert grid.title.startswith(name + " ") and f"{h}x{w}" in grid.title
        assert count_panels(grid.image, h, w) == c
    assert "maps" in grids[1].title and "Conv2D + relu" in grids[3].title


def test_maps_are_the_layers_values(small_model):
    """The panels hold each channel of the layer's value (scaled to its range), as the NumPy
    interpreter computes it from the same weights."""
    x = _image(1)
    graph = maps_graph(small_model)
    assert graph == run_pipeline(small_model.spec_graph, [
        p for p in inference_pipeline() if p.name != "fuse_conv_maxpool"])
    want = run(graph, {"input_layer": x[None]}, small_model.get_weights(),
               fetch=["conv2d_1"], dtype="float32")["conv2d_1"][0]
    got = layer_outputs(small_model, x[None], ["conv2d_1"])["conv2d_1"][0]
    assert np.allclose(got, want, atol=1e-5)
    grid = small_model.show_maps(x).cnnc_grids[3]
    cols = (grid.image.shape[1] + 1) // 7
    for ch in range(8):
        r, c = divmod(ch, cols)
        panel = grid.image[r * 7:r * 7 + 6, c * 7:c * 7 + 6]
        value = want[:, :, ch]
        span = value.max() - value.min()
        expected = (value - value.min()) / span if span > 0 else np.zeros_like(value)
        assert np.allclose(panel, expected, atol=1e-4)


def test_a_test_set_index_names_the_image_and_its_class(small_model, small_data):
    picked = resolve_image(small_model, "test:7", data_dir=str(small_data))
    assert picked.name == "test image 7" and picked.x.shape == (1, 12, 12, 1)
    fig = small_model.show_maps("test:7", data_dir=str(small_data))
    title = fig.cnnc_grids[0].title
    assert title.startswith("input 12x12x1: true ") and ", predicted " in title


def test_an_image_file_is_converted_like_predict_does(small_model, tmp_path):
    path = tmp_path / "shirt.png"
    pixels = np.zeros((40, 30), np.uint8)
    pixels[5:35, 5:25] = 200
    Image.fromarray(pixels).save(path)
    picked = resolve_image(small_model, str(path))
    assert picked.x.shape == (1, 12, 12, 1) and picked.name == str(path)
    check_figure(small_model.show_maps(str(path)))


@pytest.mark.parametrize("image, message", [
    ("test:x", "'test:x': expected test:N with N a test-set index, e.g. test:123"),
    ("test:40", "'test:40': the fashion_mnist test set has 40 images (0..39)"),
])
def test_bad_test_indices_are_clear_errors(small_model, small_data, image, message):
    with pytest.raises(CnncError) as err:
        resolve_image(small_model, image, data_dir=str(small_data))
    assert err.value.message == message


def test_only_convolutions_and_pooling_are_drawn(small_model):
    names = [n.name for n in map_layers(maps_graph(small_model))]
    assert names == ["activation", "max_pooling2d", "conv2d_1", "max_pooling2d_1"]
    # the model runs each convolution and its pooling as one node; the maps keep both
    assert [n.op for n in small_model.graph.nodes].count("conv2d_maxpool") == 2


def test_a_network_without_maps_says_so():
    import cnnc

    model = cnnc.compile("network v\ninput 4\ndense 2\n", backend="numpy")
    with pytest.raises(CnncError, match="no convolution or pooling layers"):
        model.show_maps(np.zeros((1, 4), np.float32))
