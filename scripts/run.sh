#!/usr/bin/env bash
# The main job: set everything up, then train the seed model (the Fashion-MNIST CNN) on the
# real Fashion-MNIST files for 3 of its 10 epochs and evaluate it on the test set: about five
# minutes on a 2-core CPU through pocl. `cnnc run specs/fashion.yaml` alone runs the whole recipe.
# Arguments go to `cnnc run` (e.g. --epochs 10, --backend numpy, --device gpu).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/cnnc run specs/fashion.yaml --epochs 3 "$@"
