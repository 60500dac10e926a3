"""Per-device kernel tuning: the variant space of each launch (space.py), the correctness gate
against the NumPy reference (gate.py), the tuner (tuner.py) and its cache (cache.py).

Used by `cnnc tune`, `cnnc run` (first-use tuning within a budget; `--no-tune`) and
`cnnc bench --compare`; CNNC_TUNE=0 turns it all off (the defaults, no cache).
"""
