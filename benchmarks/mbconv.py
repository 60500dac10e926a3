"""efficientnet_mini's forward pass (or another spec's with MBConv or inverted residual blocks)
with and without fuse_pointwise_depthwise, side by side in one process, each tuned (the tuning
cache; Model.tune fills what it lacks within --budget):

    .venv/bin/python benchmarks/mbconv.py [--spec specs/efficientnet_mini.yaml]
        [--batch 256] [--rounds 15] [--budget 120] [--device 0:0]

Each round runs each model --warm untimed calls (after a pause a CPU's first calls run slower),
then --runs timed ones; printed: the median and the minimum of the rounds' medians, and their
ratio unfused / fused (>1: the fusion pays), with the load average.
"""

from pass_ab import main

if __name__ == "__main__":
    main("fuse_pointwise_depthwise", "pointwise_depthwise", "specs/efficientnet_mini.yaml", __doc__)
