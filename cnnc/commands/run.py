"""`cnnc run SPEC`: train a spec on its dataset, evaluate it on the test set, keep the results.

Here `cnnc run` chooses between one process (cnnc/train/session.py's run_spec) and one rank of a
data-parallel run (cnnc/distributed/launch.py), which composes the same session's stages.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from cnnc.commands.options import (
    SPEC_HELP,
    add_backend_arguments,
    add_data_argument,
    add_spec_argument,
    positive_int,
)
from cnnc.ir.train_config import BAD_IMAGES, DATASETS, IMAGE_FITS
from cnnc.train.session import RunOptions, run_spec

HELP = "train a spec on its dataset and evaluate it on the test set"
TUNE_BUDGET = 60.0  # seconds of kernel tuning on a device's first run of a spec (cnnc/tune/)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser, nargs="?",
                      help=f"{SPEC_HELP}; with --resume, defaults to the run's spec.yaml")
    parser.add_argument("--dataset", choices=DATASETS,
                        help="override train.dataset (e.g. for an .onnx model, which has no "
                             "train section)")
    parser.add_argument("--epochs", type=positive_int, help="override train.epochs")
    parser.add_argument("--batch-size", type=positive_int, help="override train.batch_size")
    parser.add_argument("--lr", type=float, metavar="RATE",
                        help="override the optimizer's learning_rate")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="train on only the first N training examples (validation and test "
                             "sets stay whole)")
    parser.add_argument("--seed", type=int, help="override train.seed (initialisation, dropout, "
                                                 "shuffling, augmentation)")
    add_backend_arguments(parser)
    add_data_argument(parser)
    parser.add_argument("--image-fit", choices=IMAGE_FITS,
                        help="override train.image_fit: how an image folder's images meet the "
                             "input size (resize, the default, or crop: centred, then resize)")
    parser.add_argument("--bad-images", choices=BAD_IMAGES,
                        help="override train.bad_images: an unreadable image file stops the "
                             "run (refuse, the default) or is skipped and listed (skip)")
    parser.add_argument("--out", metavar="DIR",
                        help="the run folder (default runs/<spec>-<timestamp>)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                        help="progress bars: auto shows them on a terminal only")
    parser.add_argument("--no-tune", action="store_true",
                        help="do not tune kernel launches the tuning cache lacks (cached "
                             "tunings are still used; CNNC_TUNE=0 turns both off)")
    parser.add_argument("--tune-budget", type=float, default=TUNE_BUDGET, metavar="SECONDS",
                        help=f"at most this long tuning and building the kernels on first use (default "
                             f"{TUNE_BUDGET:.0f})")
    parser.add_argument("--distributed", action="store_true", default=None,
                        help="train data-parallel over MPI, one rank per process (the default "
                             "when started by mpiexec or srun with more than one process; "
                             "needs the mpi extra); see docs/scaling.md")


def run(args: argparse.Namespace) -> int:
    opts = RunOptions(
        spec=args.spec, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, limit=args.limit, backend=args.backend, device=args.device, seed=args.seed,
        data=args.data, out=args.out, resume=args.resume,
        image_fit=args.image_fit, bad_images=args.bad_images,
        bars={"auto": None, "on": True, "off": False}[args.progress],
        argv=["cnnc", *sys.argv[1:]], distributed=args.distributed,
        # A resumed run keeps the variants its first part ran with: no new tuning.
        tune_budget=0.0 if args.no_tune or args.resume else max(args.tune_budget, 0.0),
    )
    from cnnc.distributed import launch

    if launch.wanted(opts.distributed):
        # Ranks tuning at once would compete for the cores and could choose differently:
        # data-parallel runs use the cached tunings only.
        return launch.run_distributed(dataclasses.replace(opts, tune_budget=0.0), sys.stdout)
    return run_spec(opts)
