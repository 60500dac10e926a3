#!/usr/bin/env bash
# Set everything up, then run the test suite (slow tests stay deselected: add -m slow for them).
# Arguments go to pytest. pytest's exit status is this script's: 5 means no tests were run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The torch extra: the PyTorch comparisons run here too (CNNC_TORCH=0 to leave them out).
CNNC_TORCH="${CNNC_TORCH:-1}" bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
