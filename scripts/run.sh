#!/usr/bin/env bash
# The main job: set everything up, then show the seed model (the Fashion-MNIST CNN).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/cnnc summary specs/fashion.yaml "$@"
