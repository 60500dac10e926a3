"""Squeeze-and-excitation blocks for the squeeze_excite device tests (test_squeeze_excite.py)
and their Oclgrind driver: odd and tiny maps, channels that take vectors of 16, 4 and 1, each
hidden activation and gate, dense layers on a pooled vector without keepdims, layers without
biases, a projection reading the product."""

from __future__ import annotations


def _spec(shape, hidden_units: int, hidden: str, gate: str, *, dense: bool = False,
          bias: bool = True, project: bool = False) -> dict:
    """input -> pool -> hidden layer -> gate layer [-> x * gate -> 1x1 projection]."""
    c = shape[-1]
    kind = "dense" if dense else "conv2d"

    def layer(units: int, act: str, name: str) -> dict:
        size = units if dense else [units, 1]
        return {kind: size, "activation": act, "use_bias": bias, "name": name}

    layers = [{"global_avgpool2d": None, "keepdims": not dense, "name": "sq"},
              layer(hidden_units, hidden, "h"), layer(c, gate, "g")]
    if project:
        layers += [{"multiply": None, "inputs": ["input_layer", "g"], "name": "se"},
                   {"conv2d": [3, 1], "name": "proj"}]
    return {"network": "se", "input": list(shape), "layers": layers,
            "outputs": ["proj"] if project else ["g"]}


CASES = {
    # odd map, 6 channels (vectors of 2), a projection reading the product
    "odd_silu_sigmoid": _spec((5, 3, 6), 3, "silu", "sigmoid", project=True),
    # 32 channels: vectors of 16 on a CPU, stripes of 4-wide vectors on a GPU
    "wide_relu_hard_sigmoid": _spec((4, 9, 32), 8, "relu", "hard_sigmoid"),
    # 20 channels (vectors of 4), 5 hidden units (vectors of 1)
    "hard_swish_sigmoid": _spec((7, 7, 20), 5, "hard_swish", "sigmoid"),
    # one position, three channels: nothing to stripe
    "tiny_dense": _spec((1, 1, 3), 2, "relu", "sigmoid", dense=True),
    "dense_no_bias": _spec((3, 5, 12), 4, "silu", "hard_sigmoid", dense=True, bias=False),
}
