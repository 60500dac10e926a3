"""convnext_mini's forward pass with and without fuse_depthwise_layer_norm, side by side in one
process, each tuned (the tuning cache; Model.tune fills what it lacks within --budget):

    .venv/bin/python benchmarks/depthwise_layer_norm.py [--spec specs/convnext_mini.yaml]
        [--batch 256] [--rounds 15] [--budget 120] [--device 0:0]

Each round runs each model --warm untimed calls (after a pause a CPU's first calls run slower),
then --runs timed ones; printed: the median and the minimum of the rounds' medians, and their
ratio unfused / fused (>1: the fusion pays), with the load average.
"""

from pass_ab import main

if __name__ == "__main__":
    main("fuse_depthwise_layer_norm", "depthwise_layer_norm", "specs/convnext_mini.yaml", __doc__)
