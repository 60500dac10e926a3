"""`cnnc eval SPEC --weights FILE` (or `cnnc evaluate`): test loss, accuracy and confusion matrix
of saved weights."""

from __future__ import annotations

import argparse

from cnnc.commands.options import (
    add_backend_arguments,
    add_data_argument,
    add_weights_arguments,
    positive_int,
    use_run_folder,
)
from cnnc.train.loop import EVAL_BATCH_SIZE
from cnnc.train.session import DEFAULT_BACKEND

HELP = "evaluate saved weights on the spec's test set"
ALIASES = ("evaluate",)  # Keras' word for it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH_SIZE,
                        help=f"examples per inference batch (default {EVAL_BATCH_SIZE})")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="evaluate only the first N test examples")
    add_backend_arguments(parser)
    add_data_argument(parser)


def run(args: argparse.Namespace) -> int:
    from cnnc.train.evaluation import evaluate_spec

    use_run_folder(args)
    result = evaluate_spec(args.spec, args.weights, backend=args.backend or DEFAULT_BACKEND,
                           device=args.device, data_dir=args.data, batch_size=args.batch_size,
                           limit=args.limit)
    print(result.report())
    return 0
