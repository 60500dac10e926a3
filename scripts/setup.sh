#!/usr/bin/env bash
# Sets up cnnc in this checkout: the Debian packages it uses (when run as root where apt-get
# exists; otherwise it says what to install), then .venv with cnnc and its dev, pocl, mpi and
# onnx extras (mpi: mpi4py and MPICH from pip, for `mpiexec -n N cnnc run ...`; onnx: ONNX
# import and export).
# Safe to run again: what is already in place is kept, and a second run takes a second or two.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
# pocl-opencl-icd: Debian's CPU OpenCL driver. pip's pocl (LLVM 14) cannot build kernels for
#   newer CPUs ("unknown target CPU"), so Debian's is the one that works there.
# oclgrind: an OpenCL simulator that reports out-of-bounds accesses in kernels.
# dataset-fashion-mnist: the Fashion-MNIST files, so nothing downloads at run time.
# graphviz: the `dot` program that draws `cnnc show SPEC --graph` as SVG and PNG.
APT_PACKAGES=(pocl-opencl-icd oclgrind dataset-fashion-mnist graphviz)
apt_updated=0

can_apt() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# ---------------------------------------------------------------- system packages
if command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for package in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        if can_apt; then
            echo "setup: apt-get install ${missing[*]}"
            apt_install "${missing[@]}"
        else
            echo "setup: not installed (optional, but the OpenCL, data and Graphviz tests" \
                 "skip without them): ${missing[*]}"
            echo "setup: install them with: sudo apt-get install ${missing[*]}"
        fi
    fi
else
    echo "setup: not a Debian/Ubuntu system: install a CPU OpenCL driver (pocl) and oclgrind" \
         "with your package manager for the OpenCL tests"
fi

# ---------------------------------------------------------------- virtual environment
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PYTHON"
    if ! "$PYTHON" -m venv .venv; then
        rm -rf .venv
        if can_apt; then
            echo "setup: apt-get install python3-venv (needed by '$PYTHON -m venv')"
            apt_install python3-venv
            "$PYTHON" -m venv .venv
        else
            echo "setup: '$PYTHON -m venv' failed; install python3-venv and run again" >&2
            exit 1
        fi
    fi
fi

# Reinstall only when pyproject.toml or this checkout's place changed since the last run.
stamp=.venv/.cnnc-installed
want="$(pwd) $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: pip install -e '.[dev,pocl,mpi,onnx]' into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,pocl,mpi,onnx]"
    echo "$want" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/cnnc --version))"
