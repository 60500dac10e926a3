"""Command-line options shared by run, eval and predict (backend, device, data folder)."""

from __future__ import annotations

import argparse

from cnnc.backends.base import BACKENDS


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=tuple(BACKENDS),
                        help="where to run: opencl (the default) or numpy (the reference "
                             "interpreter)")
    parser.add_argument("--device", metavar="SELECTOR",
                        help="OpenCL device: gpu, cpu, P:D (platform:device) or part of a "
                             "name (default: $CNNC_DEVICE, else the first device)")


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR",
                        help="folder holding the dataset's IDX files (default: $CNNC_DATA, "
                             "the user cache, /usr/share/datasets/fashion-mnist, then download)")
