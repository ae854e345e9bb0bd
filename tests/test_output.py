"""Outputs are atomic and polite: old or new, never a device replaced, the umask respected,
no temporary left behind (errors, a full disk, Ctrl-C), symlinks written through."""

from __future__ import annotations

import errno
import os
import re
import stat

import numpy as np
import pytest

from codegen import output
from derive.cli import main
from derive.errors import SpecError

ONE_LINE = re.compile(r"^[^\n]+: error: [^\n]+$")


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    before = os.umask(0o022)
    os.umask(before)
    yield set_mask
    os.umask(before)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_files_get_the_usual_mode(tmp_path, umask, mask):
    umask(mask)
    output.write_atomic(tmp_path / "a.txt", "new")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o666 & ~mask


def test_a_replaced_file_keeps_its_mode_and_a_symlink_is_written_through(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    output.write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640


def test_devices_fifos_and_directories_are_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, what in (
        ("/dev/null", "character device"),
        ("/dev/full", "character device"),
        (fifo, "FIFO"),
        (tmp_path, "directory"),
    ):
        with pytest.raises(SpecError, match=what):
            output.destination(path)
    with pytest.raises(SpecError, match="FIFO"):
        output.write_atomic(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


def test_a_full_disk_or_ctrl_c_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"old")

    def full(f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(SpecError) as info:
        output.write_atomic(path, full)
    assert ONE_LINE.match(str(info.value)) and "No space left" in str(info.value)

    def interrupted(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        output.write_atomic(path, interrupted)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_a_directory_set_is_replaced_whole_or_not_at_all(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a.npy").write_text("old a")
    (folder / "b.npy").write_text("old b")

    def half(tmp):
        (tmp / "a.npy").write_text("new a")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        output.replace_directory(folder, half)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    assert (folder / "a.npy").read_text() == "old a"

    def whole(tmp):
        (tmp / "c.npy").write_text("new c")

    output.replace_directory(folder, whole)
    assert sorted(p.name for p in folder.iterdir()) == ["c.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_train_npy_interrupted_keeps_the_old_set(tmp_path, capsys, monkeypatch):
    w = tmp_path / "xor.npz"
    argv = ["train", "seed004", "--data", "xor", "--epochs", "1", "--val-fraction", "0"]
    assert main([*argv, "--out", str(w), "--npy"]) == 0
    old_npz = w.read_bytes()
    old_set = {p.name: p.read_bytes() for p in (tmp_path / "xor").iterdir()}
    calls = []

    def save(path, value):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        np.lib.format.write_array(open(path, "wb"), np.asarray(value))  # noqa: SIM115

    monkeypatch.setattr(np, "save", save)
    assert main([*argv, "--seed", "3", "--out", str(w), "--npy"]) == 130
    assert w.read_bytes() != old_npz  # the .npz is new; the set of .npy stays the old one
    assert {p.name: p.read_bytes() for p in (tmp_path / "xor").iterdir()} == old_set
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xor", "xor.npz"]
    capsys.readouterr()


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("missing/m.py", "does not exist"),
        (".", "a directory"),
        ("/dev/full", "character device"),
        ("/dev/null", "character device"),
    ],
)
def test_gen_output_problems_are_one_line(target, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["gen", "seed000", "-o", target]) == 2
    err = capsys.readouterr().err.strip()
    assert ONE_LINE.match(err) and words in err, err
    assert not any(tmp_path.iterdir())


def test_a_generated_module_saves_politely_too(tmp_path, umask):
    from codegen.bundled import OUT
    from codegen.train import load_source

    mod = load_source((OUT / "seed000.py").read_text(encoding="utf-8"))
    params = mod.init_params({"B": 2, "n_x": 3, "n_h": 4, "n_y": 2})
    umask(0o027)
    mod.save(tmp_path / "w.npz", params)
    assert stat.S_IMODE(os.stat(tmp_path / "w.npz").st_mode) == 0o640
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        mod.save(fifo, params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "w.npz"]


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_train_refuses_a_device_before_training(option, tmp_path, capsys):
    argv = ["train", "seed004", "--data", "xor", "--out", str(tmp_path / "w.npz")]
    assert main([*argv, option, "/dev/null"]) == 2
    err = capsys.readouterr().err.strip()
    assert ONE_LINE.match(err) and "character device" in err, err  # no epoch line: not trained
    assert not any(tmp_path.iterdir())


def test_unwritable_directory_is_one_line(tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)  # a read-only directory, even for root
    with pytest.raises(SpecError) as info:
        output.write_atomic(tmp_path / "m.py", "x")
    assert ONE_LINE.match(str(info.value)) and "Permission denied" in str(info.value)
    assert not any(tmp_path.iterdir())
