#!/usr/bin/env bash
# One prepared check of cnnc on a machine with a GPU, in under 10 minutes, into one report file:
#   1. cnnc doctor                       (drivers, devices and their limits, each driver qualified)
#   2. cnnc verify SPEC --train          on every example spec, node by node against NumPy
#   3. edge launches                     more than 65,535 row tiles; memory over the per-buffer cap
#                                        (scripts/edge_launches.py)
#   4. cnnc bench fashion                forward (batch 256) and training (batch 32 and 128)
#   5. the OpenCL tests                  tests/opencl against the device, in the time left
# Each step has a time limit; a step that fails or runs out of time is marked so and the rest go
# on. Exit status 1 if any step failed.
#
# Usage: bash scripts/gpu-check.sh [--device SELECTOR] [--out FILE] [--max-buffer MIB]
#                                  [--oclgrind] [--tiny]
#   --device     the device to check (default: gpu); the tests run on it through CNNC_DEVICE
#   --out        the report file (default: gpu-check-HOST-DATE.txt here)
#   --max-buffer simulate a largest allocation of MIB for the edge launch (small devices)
#   --oclgrind   check the Oclgrind simulator with GPU-like limits instead (implies --tiny)
#   --tiny       small shapes and batch 1 (for simulators): the row-tile edge is planned, not run,
#                specs over 1 MFLOP per image are not verified, and nothing is timed
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEVICE=gpu
OUT=""
MAX_BUFFER=""
TINY=0
OCLGRIND=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --max-buffer) MAX_BUFFER="$2"; shift 2 ;;
        --tiny) TINY=1; shift ;;
        --oclgrind) OCLGRIND=1; TINY=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

BUDGET=570  # seconds for all the steps: under 10 minutes with the setup
START=$(date +%s)

# ---------------------------------------------------------------- Python with cnnc
if [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
elif bash scripts/setup.sh; then
    PY=.venv/bin/python
else
    PY="${PYTHON:-python3}"
fi
if ! "$PY" -c "import cnnc" 2>/dev/null; then
    echo "gpu-check: $PY cannot import cnnc; run bash scripts/setup.sh first" >&2
    exit 2
fi

if [ "$OCLGRIND" = 1 ]; then
    ICD_DIR="$(mktemp -d)"
    trap 'rm -rf "$ICD_DIR"' EXIT
    echo /usr/lib/oclgrind/liboclgrind-rt-icd.so > "$ICD_DIR/oclgrind.icd"
    export OCL_ICD_VENDORS="$ICD_DIR"
    # A small GPU's limits: the work-group shapes must be chosen within them.
    export OCLGRIND_MAX_WGSIZE=128 OCLGRIND_LOCAL_MEM_SIZE=16384 OCLGRIND_COMPUTE_UNITS=2
    DEVICE=oclgrind
fi
export CNNC_DEVICE="$DEVICE" CNNC_OFFLINE=1 PYTHONWARNINGS=ignore PYTHONUNBUFFERED=1

REPORT="${OUT:-gpu-check-$(hostname)-$(date +%Y%m%d-%H%M%S).txt}"
: > "$REPORT"
SUMMARY=()
FAILED=0

say() { echo "$*" | tee -a "$REPORT"; }

# step NAME SECONDS COMMAND...: run with a time limit, its output into the report.
step() {
    local name="$1" limit="$2"
    shift 2
    local left=$(( BUDGET - ($(date +%s) - START) ))
    if [ "$limit" -gt "$left" ]; then limit="$left"; fi
    if [ "$limit" -le 5 ]; then
        SUMMARY+=("$(printf '%-9s %6s  %s' SKIPPED - "$name (no time left)")")
        say "== $name: skipped, the 10-minute budget is spent"
        FAILED=1
        return
    fi
    say ""
    say "== $name  (limit ${limit} s)"
    say "\$ $*"
    local t0 status
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" 2>&1 | grep -v -E "CompilerWarning|warnings generated|prg.build|_create_built_program" | tee -a "$REPORT"
    status=${PIPESTATUS[0]}
    local took=$(( $(date +%s) - t0 ))
    local verdict=ok
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then verdict=TIMEOUT; FAILED=1
    elif [ "$status" != 0 ]; then verdict="FAIL($status)"; FAILED=1; fi
    say "-- $name: $verdict in ${took} s"
    SUMMARY+=("$(printf '%-9s %5ss  %s' "$verdict" "$took" "$name")")
}

say "cnnc GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname)"
say "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)'), $("$PY" -m cnnc.cli --version)"
say "device selector: $DEVICE$([ "$TINY" = 1 ] && echo ' (tiny shapes)')$([ "$OCLGRIND" = 1 ] && echo ", Oclgrind with OCLGRIND_MAX_WGSIZE=$OCLGRIND_MAX_WGSIZE OCLGRIND_LOCAL_MEM_SIZE=$OCLGRIND_LOCAL_MEM_SIZE OCLGRIND_COMPUTE_UNITS=$OCLGRIND_COMPUTE_UNITS")"
say "CPU: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs), $(nproc) cores"
command -v nvidia-smi >/dev/null 2>&1 && say "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"

# ---------------------------------------------------------------- 1. doctor
step "cnnc doctor" 120 "$PY" -m cnnc.cli doctor --device "$DEVICE"

# ---------------------------------------------------------------- 2. verify every example spec
BATCH_ARGS=()
VERIFY_LIMIT=90
[ "$TINY" = 1 ] && BATCH_ARGS=(--batch 1) && VERIFY_LIMIT=180
for spec in specs/*.yaml; do
    if [ "$TINY" = 1 ]; then
        flops=$("$PY" -m cnnc.cli summary "$spec" | sed -n 's/^Forward FLOPs per example: \([0-9,]*\).*/\1/p' | tr -d ,)
        if [ "${flops:-0}" -gt 1000000 ]; then
            say ""
            say "== cnnc verify $spec --train: skipped with --tiny ($flops FLOP per image)"
            SUMMARY+=("$(printf '%-9s %6s  %s' skipped - "cnnc verify $spec --train (--tiny)")")
            continue
        fi
    fi
    step "cnnc verify $spec --train" "$VERIFY_LIMIT" "$PY" -m cnnc.cli verify "$spec" --train --device "$DEVICE" "${BATCH_ARGS[@]}"
done

# ---------------------------------------------------------------- 3. edge launches
EDGE_ARGS=(--device "$DEVICE")
[ "$TINY" = 1 ] && EDGE_ARGS+=(--tiny)
[ -n "$MAX_BUFFER" ] && EDGE_ARGS+=(--max-buffer "$MAX_BUFFER")
step "edge launches" 200 "$PY" scripts/edge_launches.py "${EDGE_ARGS[@]}"

# ---------------------------------------------------------------- 4. benchmarks
if [ "$TINY" = 1 ]; then
    say ""
    say "== cnnc bench: skipped with --tiny (timing a simulator says nothing about a device)"
    SUMMARY+=("$(printf '%-9s %6s  %s' skipped - "cnnc bench (--tiny)")")
else
    step "cnnc bench fashion (forward, batch 256)" 60 "$PY" -m cnnc.cli bench fashion --device "$DEVICE" --batch 256 --runs 5
    step "cnnc bench fashion --train (batch 32)" 60 "$PY" -m cnnc.cli bench fashion --train --device "$DEVICE" --batch 32 --runs 5
    step "cnnc bench fashion --train (batch 128)" 60 "$PY" -m cnnc.cli bench fashion --train --device "$DEVICE" --batch 128 --runs 5
fi

# ---------------------------------------------------------------- 5. the OpenCL tests, last
# (the Oclgrind tests run their own simulator, not the device: left out)
TEST_ARGS=(tests/opencl -q -p no:cacheprovider -k "not oclgrind")
if [ "$TINY" = 1 ]; then
    TEST_ARGS=(tests/opencl/test_ops.py tests/opencl/test_runtime_limits.py -q -p no:cacheprovider
               -k "conv_1x1_wide or dense_rank4 or planned_again or split_into")
fi
step "OpenCL tests on the device (pytest ${TEST_ARGS[*]})" 600 "$PY" -m pytest "${TEST_ARGS[@]}"

# ---------------------------------------------------------------- summary
say ""
say "== summary ($(( $(date +%s) - START )) s in all)"
for line in "${SUMMARY[@]}"; do say "$line"; done
say "report: $REPORT"
exit "$FAILED"
