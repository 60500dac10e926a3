#!/usr/bin/env bash
# Sets up cnnc in this checkout: the Debian packages it uses (when run as root where apt-get
# exists; otherwise it says what to install), then .venv with cnnc and its dev, mpi and onnx
# extras (mpi: mpi4py and MPICH from pip, for `mpiexec -n N cnnc run ...`; onnx: ONNX import
# and export), the torch extra where asked for (CNNC_TORCH=1, as scripts/test.sh does) or
# already there, and the pocl extra (pip's CPU OpenCL driver) only where no system OpenCL driver
# is installed. A new .venv ends with `cnnc devices`, which qualifies every driver on cnnc's own
# kernels (once per driver; cnnc/backends/opencl/qualification.py).
# Safe to run again: what is already in place is kept, and a second run takes a second or two.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
# pocl-opencl-icd: Debian's CPU OpenCL driver (pocl 3.1, LLVM 15): it qualified on every CPU
#   these machines have had. pip's pocl 3.0-rc2 (LLVM 14) cannot build for a Zen 5 ("unknown
#   target CPU") and crashes on cnnc's kernels on a Zen 4, so it is installed only where no
#   system driver is (a machine without root), as a last resort that still has to qualify.
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

# ---------------------------------------------------------------- OpenCL driver
# A system driver is a vendor file the ICD loader reads (Debian's pocl, a GPU vendor's driver).
extras="dev,mpi,onnx"
# torch: the tests' PyTorch oracle. scripts/test.sh asks for it (CNNC_TORCH=1), so the PyTorch
# comparisons run everywhere, CI included (a 192 MB CPU wheel, 760 MB installed, about 4 minutes
# the first time); kept once installed, so that run.sh after test.sh does not reinstall.
# CNNC_TORCH=0 leaves it out (its tests skip). cnnc itself never imports torch.
torch_installed() {
    .venv/bin/python -c 'import importlib.util as u, sys; sys.exit(u.find_spec("torch") is None)'
}
if [ "${CNNC_TORCH:-}" = 1 ] || { [ "${CNNC_TORCH:-}" != 0 ] && torch_installed; }; then
    extras="$extras,torch"
fi
if compgen -G "/etc/OpenCL/vendors/*.icd" >/dev/null; then
    driver="system"
else
    extras="$extras,pocl"
    driver="pip's pocl"
    echo "setup: no system OpenCL driver (/etc/OpenCL/vendors is empty): installing pip's pocl;" \
         "Debian's (apt-get install pocl-opencl-icd) is the one known to work on every CPU"
fi

# Reinstall only when pyproject.toml, the extras or this checkout's place changed since the last
# run.
stamp=.venv/.cnnc-installed
want="$(pwd) $(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: pip install -e '.[$extras]' into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    echo "$want" > "$stamp"
    # Qualify every OpenCL driver now (cnnc's kernels built and run in a child process, about
    # a minute each the first time), so that a broken one is named here, with what to do.
    echo "setup: OpenCL devices ($driver driver), each qualified on cnnc's kernels:"
    .venv/bin/cnnc devices || echo "setup: no usable OpenCL device: cnnc runs on NumPy only" \
                                   "(--backend numpy) until one is installed"
fi
echo "setup: ready ($(.venv/bin/cnnc --version))"
