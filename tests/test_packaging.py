"""Packaging: the distribution's name and version, ``python -m derive``, ``-`` for
standard input, and an sdist that carries everything the tests need."""

from __future__ import annotations

import importlib.metadata
import io
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import derive
from derive.cli import main

ROOT = Path(__file__).parent.parent
DIST = "derive-backprop"


def _pyproject(key: str) -> str:
    match = re.search(rf'^{key} = "([^"]*)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match, key
    return match.group(1)


def test_distribution_name_and_version(capsys):
    """The name is the free one; the version is ``derive.__version__``, installed or not."""
    assert _pyproject("name") == DIST
    installed = importlib.metadata.packages_distributions().get("derive", [])
    assert installed, "the derive package is installed"
    for dist in installed:  # an environment installed before the rename names it "derive"
        assert importlib.metadata.version(dist) == derive.__version__
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"derive {derive.__version__}"


def test_python_m_derive_runs_the_command():
    run = subprocess.run(
        [sys.executable, "-m", "derive", "list"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and "seed000" in run.stdout, run.stderr


def _stdin(monkeypatch, data: bytes):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_grad_reads_a_spec_from_standard_input(monkeypatch, capsys):
    _stdin(monkeypatch, (ROOT / "derive/specs/seed000.nn").read_bytes())
    assert main(["grad", "-"]) == 0
    assert "∂L/∂W = xᵀ δu" in capsys.readouterr().out


def test_errors_on_standard_input_name_it(monkeypatch, capsys):
    _stdin(monkeypatch, b"input x[B]\nL = y\n")
    assert main(["grad", "-"]) == 2
    assert capsys.readouterr().err.startswith("<stdin>:2:")
    _stdin(monkeypatch, b"\xff\xfe")
    assert main(["grad", "-"]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_gen_reads_a_spec_from_standard_input(monkeypatch, capsys):
    _stdin(monkeypatch, (ROOT / "derive/specs/seed004.nn").read_bytes())
    assert main(["gen", "-"]) == 0
    assert "def train_step(" in capsys.readouterr().out


def test_license_and_readme_install_line():
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    assert f"pip install {DIST}" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_sdist_carries_every_tracked_file(tmp_path):
    """Built from a copy of the tracked files, the sdist holds all of them (tests included)."""
    listed = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    tracked = [
        f
        for f in listed
        if not any(p.startswith(".") for p in Path(f).parts) and (ROOT / f).is_file()
    ]
    src = tmp_path / "src"
    for f in tracked:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    out = tmp_path / "dist"
    out.mkdir()
    build = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))"
    run = subprocess.run(
        [sys.executable, "-c", build, str(out)],
        capture_output=True,
        text=True,
        cwd=src,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    name = run.stdout.strip().splitlines()[-1]
    with tarfile.open(out / name) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    missing = sorted(set(tracked) - members)
    assert not missing, missing
    assert "derive/py.typed" in members and "codegen/py.typed" in members
