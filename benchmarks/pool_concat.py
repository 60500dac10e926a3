"""inception_mini's forward pass with and without fuse_pool_concat (the max pooling reading the
concatenated branches in place), side by side in one process, each tuned (the tuning cache;
Model.tune fills what it lacks within --budget):

    .venv/bin/python benchmarks/pool_concat.py [--spec specs/inception_mini.yaml]
        [--batch 1] [--rounds 15] [--runs 10] [--budget 20] [--device 0:0]

Each round runs each model --warm untimed calls (after a pause a CPU's first calls run slower),
then --runs timed ones; printed: the median and the minimum of the rounds' medians, and their
ratio unfused / fused (>1: the fusion pays), with the load average.
"""

from pass_ab import main

if __name__ == "__main__":
    main("fuse_pool_concat", "maxpool2d_concat", "specs/inception_mini.yaml", __doc__)
