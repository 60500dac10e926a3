"""`cnnc eval SPEC --weights FILE` (or `cnnc evaluate`): loss, accuracy and confusion matrix of
saved weights."""

from __future__ import annotations

import argparse

from cnnc.commands.options import (
    add_backend_arguments,
    add_data_argument,
    add_weights_arguments,
    positive_int,
    use_run_folder,
)
from cnnc.ir.train_config import TTA_MODES
from cnnc.train.evaluation import SPLITS
from cnnc.train.loop import EVAL_BATCH_SIZE
from cnnc.train.session import DEFAULT_BACKEND

HELP = "evaluate saved weights on the spec's test set"
ALIASES = ("evaluate",)  # Keras' word for it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH_SIZE,
                        help=f"examples per inference batch (default {EVAL_BATCH_SIZE})")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="evaluate only the first N examples (of the test set, or of --split)")
    parser.add_argument("--tta", choices=TTA_MODES,
                        help="test-time augmentation: outputs averaged over the image and its "
                             "mirror (flip), each also shifted a pixel each way (flip_shift), "
                             "or none (default: the spec's train.tta)")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="evaluate the test set (default) or the validation examples the "
                             "spec holds out, the split to choose settings such as --tta on")
    add_backend_arguments(parser)
    add_data_argument(parser)


def run(args: argparse.Namespace) -> int:
    from cnnc.train.evaluation import evaluate_spec

    use_run_folder(args)
    result = evaluate_spec(args.spec, args.weights, backend=args.backend or DEFAULT_BACKEND,
                           device=args.device, data_dir=args.data, batch_size=args.batch_size,
                           limit=args.limit, tta=args.tta, split=args.split)
    print(result.report())
    return 0
