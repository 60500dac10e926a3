"""Packaging and setup: every package is listed, and an installed wheel finds its data files.

The wheel is built offline (--no-build-isolation, with the dev extra's setuptools and wheel)
from a copy of the checkout, installed with --target, and imported from there in a Python that
does not see the editable install, so a file missing from package data cannot hide.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Package directories that live outside cnnc/ in the checkout (pyproject's package-dir).
MAPPED = {"cnnc.kernels": ROOT / "kernels", "cnnc.specs": ROOT / "specs"}


def listed_packages() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the one list this test needs
        block = re.search(r"^packages\s*=\s*\[(.*?)\]", text, re.DOTALL | re.MULTILINE).group(1)
        return set(re.findall(r'"([^"]+)"', block))
    return set(tomllib.loads(text)["tool"]["setuptools"]["packages"])


def package_directories() -> set[str]:
    found = set()
    for init in (ROOT / "cnnc").rglob("*.py"):
        if "__pycache__" not in init.parts:
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found | set(MAPPED)


def test_every_package_directory_is_listed_in_pyproject():
    listed, found = listed_packages(), package_directories()
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == set(), "pyproject.toml lists packages that do not exist"
    for name, folder in MAPPED.items():
        assert (folder / "__init__.py").is_file(), f"{name} needs {folder}/__init__.py"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("cnnc", "kernels", "specs"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("cnnc-*.whl")
    return built


def test_wheel_holds_grammar_specs_and_kernels(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cnnc/frontend/grammar.lark" in names
    specs = [p.name for p in (ROOT / "specs").iterdir() if p.suffix in (".cnn", ".yaml")]
    assert specs and {f"cnnc/specs/{n}" for n in specs} <= names
    kernels = [p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cl", ".h")]
    assert {f"cnnc/kernels/{n}" for n in kernels} <= names
    assert "cnnc/kernels/__init__.py" in names and "cnnc/specs/__init__.py" in names


CHECK = textwrap.dedent("""
    import json
    from importlib import resources

    import cnnc
    from cnnc.frontend.dsl_parser import parser
    from cnnc.frontend.spec import bundled_specs, load_spec

    parser()  # the grammar, read from package data
    print(json.dumps({
        "cnnc": cnnc.__file__,
        "grammar": resources.files("cnnc.frontend").joinpath("grammar.lark").is_file(),
        "specs": sorted(f.name for f in resources.files("cnnc.specs").iterdir()),
        "kernels": sorted(f.name for f in resources.files("cnnc.kernels").iterdir()),
        "bundled": bundled_specs(),
        "fashion": load_spec("specs/fashion.yaml").param_count(),
    }))
""")


def test_installed_copy_finds_its_resources(wheel, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # -S: no site initialisation, so the editable install's import hook stays out; the
    # dependencies come from the same site-packages, named explicitly after the install.
    path = os.pathsep.join([str(target), *site.getsitepackages()])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = path
    proc = subprocess.run([sys.executable, "-S", "-c", CHECK], check=False,
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert Path(found["cnnc"]).is_relative_to(target)
    assert found["grammar"] is True
    assert "fashion.yaml" in found["specs"] and "fashion.cnn" in found["bundled"]
    kernels = sorted(p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cl", ".h"))
    assert set(kernels) <= set(found["kernels"])
    assert found["fashion"] == 1_413_834


# ---------------------------------------------------------------- setup scripts and CI


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands, ".ci/run runs nothing"
    assert any(c in (line.strip() for line in readme) for c in commands)


@pytest.mark.parametrize("status", [0, 1, 5])
def test_ci_fails_when_the_tests_fail_or_none_are_collected(tmp_path, status):
    """pytest's exit status 5 (no tests collected) must fail CI like any other failure."""
    (tmp_path / ".ci").mkdir()
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "scripts" / "test.sh").write_text(f"exit {status}\n")
    proc = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], check=False, capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert (proc.returncode == 0) == (status == 0), proc.stdout + proc.stderr


def test_scripts_are_there_and_quick_start_names_them():
    readme = (ROOT / "README.md").read_text()
    for script in ("setup.sh", "run.sh", "test.sh"):
        assert (ROOT / "scripts" / script).is_file()
    assert "bash scripts/run.sh" in readme and "bash scripts/test.sh" in readme
    for script in [*(ROOT / "scripts").glob("*.sh"), ROOT / ".ci" / "run"]:
        proc = subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True,
                              text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"


def test_test_modules_have_unique_basenames():
    """The test folders are not packages, so pytest imports each test module by its basename:
    two files with the same name in different folders fail the whole run's collection."""
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "fuzz_corpus" not in path.parts:
            names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    clashes = {k: v for k, v in names.items() if len(v) > 1 and k != "conftest.py"}
    assert clashes == {}


def test_torch_is_a_test_extra_the_test_command_installs_and_cnnc_never_imports():
    """Issue 25: the PyTorch comparisons skipped in CI because nothing installed torch. The
    `torch` extra holds it, scripts/test.sh (CI's command) asks setup.sh for it, and it stays
    out of cnnc's own dependencies and imports."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11's tomllib reads pyproject")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = re.compile(r"[A-Za-z0-9_.-]+")
    extra = [name.match(r).group(0) for r in project["optional-dependencies"]["torch"]]
    assert "torch" in extra and "onnxscript" in extra
    assert "torch" not in [name.match(r).group(0) for r in project["dependencies"]]
    assert 'CNNC_TORCH="${CNNC_TORCH:-1}" bash scripts/setup.sh' in (
        ROOT / "scripts" / "test.sh").read_text()
    assert 'extras="$extras,torch"' in (ROOT / "scripts" / "setup.sh").read_text()
    imports = re.compile(r"^\s*(import torch|from torch)\b", re.MULTILINE)
    for path in (ROOT / "cnnc").rglob("*.py"):
        assert not imports.search(path.read_text()), f"{path}: cnnc must not import torch"
