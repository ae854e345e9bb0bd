"""`derive gen`, `train` and `test` refuse nonsense with one line and exit 2.

Bad options, a const without a value, a diverging run, weights of another
spec, labels out of range, unreadable or hostile data files, outputs that are
not regular files: each is one line ``…: error: …`` on stderr, exit 2, no
traceback, and nothing written.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from codegen.bundled import OUT
from codegen.data import load
from codegen.train import check_weights
from derive import SpecError
from derive.cli import main
from tests.test_codegen import module_from_source

ONE_LINE = re.compile(r"^[^\n]+: error: [^\n]+$")


def refused(capsys, argv: list[str], *words: str) -> str:
    """Run the command; assert exit 2 and a last line (after any progress lines) of the
    shape ``…: error: …`` holding ``words``; return that line."""
    assert main(argv) == 2
    out = capsys.readouterr().err.strip()
    assert "Traceback" not in out
    err = out.splitlines()[-1]
    assert ONE_LINE.match(err), out
    assert all(": error: " not in line for line in out.splitlines()[:-1]), out  # progress only
    for word in words:
        assert word in err, (word, err)
    return err


def train_args(tmp_path, *more: str, spec: str = "seed000", data: str = "seed000") -> list:
    return ["train", spec, "--data", data, "--out", str(tmp_path / "w.npz"), *more]


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--batch-size", "0"], ["--batch-size 0"]),
        (["--epochs", "-1"], ["--epochs -1"]),
        (["--epochs", "0"], ["--epochs 0"]),
        (["--lr", "nan"], ["--lr nan", "finite"]),
        (["--lr", "inf"], ["--lr inf"]),
        (["--lr", "-0.1"], ["--lr -0.1"]),
        (["--val-fraction", "nan"], ["--val-fraction nan"]),
        (["--val-fraction", "1.5"], ["--val-fraction 1.5"]),
        (["--val-fraction", "1"], ["--val-fraction 1"]),
        (["--val-fraction", "-0.1"], ["--val-fraction -0.1"]),
        (["--patience", "0"], ["--patience 0"]),
        (["--weight-decay", "-0.1"], ["--weight-decay -0.1"]),
        (["--weight-decay", "nan"], ["--weight-decay nan"]),
        (["--weight-decay", "1000"], ["--weight-decay 1000", "lr * WD below 1"]),
        (["--final-epochs", "-1"], ["--final-epochs -1"]),
        (["--lr", "5", "--optimizer", "adam"], ["--lr 5.0", "below 3.33", "weight decay 0.3"]),
        (["--seed", "-1"], ["--seed -1"]),
        (["--dim", "n_h=10**12"], ["--dim expects NAME=SIZE"]),
        (["--dim", "n_h=1000000"], ["between 1 and 65536"]),
        (["--dim", "n_h=0"], ["between 1 and 65536"]),
        (["--dim", "nosuch=4"], ["no dimension 'nosuch'", "n_h"]),
        (["--dim", "B=5"], ["the data fixes B = 64"]),
        (["--dim", "n_h=65536"], ["param entries", "limit"]),
        (["--const", "lam=1"], ["no const 'lam'"]),
        (["--const", "lam"], ["--const expects NAME=NUMBER"]),
    ],
)
def test_bad_training_options_are_one_line(options, words, tmp_path, capsys):
    refused(capsys, train_args(tmp_path, *options), "<options>", *words)
    assert not (tmp_path / "w.npz").exists()


def test_the_param_limit_counts_dim_arithmetic(tmp_path, capsys):
    """makemore's W1[T * E, H]: the count multiplies T by E (the module's param_shapes)."""
    T, V, E, H = load("words").features.shape[1], 27, 4096, 4096
    total = V * E + T * E * H + 3 * H + H * V + V
    options = ["--dim", f"E={E}", "--dim", f"H={H}"]
    err = refused(capsys, train_args(tmp_path, *options, spec="makemore", data="words"))
    assert f"these sizes give {total:,} param entries" in err, err
    assert not (tmp_path / "w.npz").exists()


CONST_SPEC = """input  x[B, n_x]
target t[B, n_y]
param  W[n_x, n_y]
const  lam
y = x @ W
L = sum((y - t)**2) + lam * sum(W**2)
"""


def test_a_const_without_default_needs_const_for_train_test_and_gen(tmp_path, capsys):
    spec = tmp_path / "c.nn"
    spec.write_text(CONST_SPEC)
    w = str(tmp_path / "w.npz")
    base = ["--data", "seed000", "--lr", "1e-5", "--epochs", "2"]
    err = refused(capsys, ["train", str(spec), *base, "--out", w], "--const lam=VALUE")
    assert err.startswith(f"{spec}:4:8: error:")
    for bad in ("lam=nan", "lam=inf", "lam=x"):
        refused(capsys, ["train", str(spec), *base, "--out", w, "--const", bad], "--const")
    assert main(["train", str(spec), *base, "--out", w, "--const", "lam=0.5"]) == 0
    capsys.readouterr()
    refused(capsys, ["test", str(spec), "--data", "seed000", "--weights", w], "--const lam=")
    argv = ["test", str(spec), "--data", "seed000", "--weights", w, "--const", "lam=0.5"]
    assert main([*argv, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    params = np.load(w)
    ds = load("seed000", "test")
    xs = (ds.features - params["__mean__"]) / params["__std__"]
    want = np.sum((xs @ params["W"] - ds.targets) ** 2) + 0.5 * np.sum(params["W"] ** 2)
    assert report["loss"] == pytest.approx(want, rel=1e-10)
    out = tmp_path / "m.py"
    assert main(["gen", str(spec), "--const", "lam=0.25", "-o", str(out)]) == 0
    assert '"lam": 0.25,' in out.read_text()


def test_divergence_stops_with_one_line_and_keeps_the_old_weights(tmp_path, capsys):
    w = tmp_path / "w.npz"
    w.write_bytes(b"old weights")
    argv = train_args(tmp_path, "--lr", "1e10", "--epochs", "20", "--optimizer", "sgd")
    err = refused(capsys, argv, "diverged")
    assert "smaller --lr" in err
    assert w.read_bytes() == b"old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_explosive_but_finite_loss_is_divergence_too(tmp_path, capsys):
    """Adam at --lr 1e10 on seed000 reaches a finite loss of 1.8e49 (ReLU): it was saved."""
    w = tmp_path / "w.npz"
    w.write_bytes(b"old weights")
    argv = train_args(tmp_path, "--lr", "1e10", "--epochs", "3", "--optimizer", "adam")
    argv += ["--weight-decay", "0"]  # lr * WD below 1: no decay at this lr
    err = refused(capsys, argv, "diverged", "after epoch 1", "1e6 times the initial")
    assert "inf" not in err and "nan" not in err  # the finite rule fired, not the old one
    assert w.read_bytes() == b"old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


@pytest.mark.parametrize(
    ("initial", "losses", "stops"),
    [
        (5.0, [4.0, 3e6], False),  # at most 1e6 * 5: still training
        (5.0, [4.0, 5.1e6], True),
        (-5.0, [-5.1e6], True),  # by magnitude: a loss running off to -inf explodes too
        (1e-9, [0.9e6], False),  # a tiny initial loss counts as 1
        (1e-9, [1.1e6], True),
        (float("nan"), [1e300], False),  # no finite start: only finiteness is checked
        (float("nan"), [float("inf")], True),
        (5.0, [float("nan")], True),
    ],
)
def test_divergence_rule(initial, losses, stops):
    from codegen.train import Diverged, _stop_on_divergence

    check = _stop_on_divergence(lambda epoch, history: None, initial)
    history: dict = {"loss": [], "val_loss": []}
    try:
        for epoch, value in enumerate(losses):
            history["loss"].append(value)
            check(epoch, history)
    except Diverged:
        assert stops
    else:
        assert not stops


# --- derive test -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed000_weights(tmp_path_factory):
    w = tmp_path_factory.mktemp("w") / "s0.npz"
    argv = ["train", "seed000", "--data", "seed000", "--epochs", "3", "--lr", "1e-5"]
    assert main([*argv, "--dim", "n_h=8", "--val-fraction", "0", "--out", str(w)]) == 0
    return w


def test_test_reports_regression_metrics_for_a_regression_target(seed000_weights, capsys):
    capsys.readouterr()
    argv = ["test", "seed000", "--data", "seed000", "--weights", str(seed000_weights)]
    assert main([*argv, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] is None and report["confusion"] is None
    ds = load("seed000", "test")
    p = np.load(seed000_weights)
    x = (ds.features - p["__mean__"]) / p["__std__"]
    y = np.maximum(x @ p["W"], 0) @ p["S"]
    r = y - ds.targets
    assert report["mse"] == pytest.approx(np.mean(r**2), rel=1e-10)
    assert report["mae"] == pytest.approx(np.mean(np.abs(r)), rel=1e-10)
    spread = np.sum((ds.targets - ds.targets.mean(axis=0)) ** 2)
    assert report["r2"] == pytest.approx(1 - np.sum(r**2) / spread, rel=1e-10)
    assert main(argv) == 0
    assert "mse " in capsys.readouterr().out


def test_weights_of_another_shape_are_refused(seed000_weights, tmp_path, capsys):
    arrays = dict(np.load(seed000_weights))
    arrays["S"] = arrays["S"][:3]  # n_h = 8 in W but 3 in S
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    argv = ["test", "seed000", "--data", "seed000", "--weights", str(bad)]
    refused(capsys, argv, "S has shape (3, 10)", "n_h = 8")
    arrays = dict(np.load(seed000_weights))
    arrays["extra"] = np.zeros(3)
    np.savez(bad, **arrays)
    refused(capsys, argv, "extra", "does not declare")
    arrays = dict(np.load(seed000_weights))
    arrays["W"][0, 0] = np.nan
    np.savez(bad, **arrays)
    refused(capsys, argv, "NaN")


def test_json_never_holds_nan(seed000_weights, tmp_path, capsys):
    arrays = dict(np.load(seed000_weights))
    arrays["W"] *= 1e300  # the loss overflows to inf
    big = tmp_path / "big.npz"
    np.savez(big, **arrays)
    capsys.readouterr()
    argv = ["test", "seed000", "--data", "seed000", "--weights", str(big), "--format", "json"]
    assert main(argv) == 0
    text = capsys.readouterr().out

    def no_constants(name):
        raise AssertionError(f"{name} in JSON output")

    report = json.loads(text, parse_constant=no_constants)
    assert report["loss"] is None and "not a finite number" in report["notes"]["loss"]


# --- data ------------------------------------------------------------------------------------


def npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_labels_out_of_range_are_refused(tmp_path, capsys):
    x = np.zeros((4, 4))
    big = npz(tmp_path / "big.npz", x=x, y=np.array([0, 1, 2_000_000_000, 1]))
    refused(capsys, train_args(tmp_path, spec="seed002", data=big), "targets[2]", "2000000000")
    csv = tmp_path / "half.csv"
    csv.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0.5\n7,8,1\n")
    err = refused(capsys, train_args(tmp_path, spec="seed002", data=str(csv)), "line 4", "0.5")
    assert err.startswith(f"{csv}:4:1: error:")
    values = npz(tmp_path / "values.npz", x=x, y=np.array([0.0, 1.0, 0.5, 1.0]))
    refused(capsys, train_args(tmp_path, spec="seed002", data=values), "onehot", "value targets")


def test_non_finite_targets_are_refused(tmp_path, capsys):
    t = np.zeros((4, 2))
    t[2, 1] = np.inf
    bad = npz(tmp_path / "t.npz", x=np.zeros((4, 3)), y=t)
    refused(capsys, train_args(tmp_path, data=bad), "targets[2, 1] is inf")
    huge = npz(tmp_path / "f.npz", x=np.full((4, 3), 1e308), y=np.zeros((4, 2)))
    refused(capsys, train_args(tmp_path, data=huge), "too large to standardise")


def idx(magic: int, dims: tuple, body: bytes) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + body


def test_mnist_label_200_and_zero_images_are_refused(tmp_path, capsys):
    for part, n in (("train", 4), ("t10k", 2)):
        images = idx(0x803, (n, 28, 28), bytes(n * 784))
        (tmp_path / f"{part}-images-idx3-ubyte").write_bytes(images)
        labels = bytes([1, 200, 3, 4][:n])
        (tmp_path / f"{part}-labels-idx1-ubyte").write_bytes(idx(0x801, (n,), labels))
    argv = train_args(tmp_path, spec="seed002", data=f"mnist:{tmp_path}")
    refused(capsys, argv, "label 200 at index 1", "0..9")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx(0x803, (0, 28, 28), b""))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx(0x801, (0,), b""))
    refused(capsys, argv, "holds no images")


def test_a_gzip_bomb_is_refused_after_its_header(tmp_path, capsys):
    """A small .gz whose header declares 28x28 images for one example but holds 100 MB."""
    for part in ("train", "t10k"):
        (tmp_path / f"{part}-labels-idx1-ubyte").write_bytes(idx(0x801, (1,), b"\x01"))
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = z.compress(idx(0x803, (1, 28, 28), bytes(784)))
    for _ in range(100):
        bomb += z.compress(bytes(1 << 20))
    bomb += z.flush()
    assert len(bomb) < 200_000
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(bomb)
    argv = train_args(tmp_path, spec="seed002", data=f"mnist:{tmp_path}")
    refused(capsys, argv, "too long")


def test_hostile_npz_files_are_refused(tmp_path, capsys):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((40, 3)), y=np.zeros((40, 2)))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    refused(capsys, train_args(tmp_path, data=str(truncated)), "truncated.npz")
    renamed = tmp_path / "array.npz"
    with renamed.open("wb") as f:
        np.save(f, np.zeros((4, 3)))
    refused(capsys, train_args(tmp_path, data=str(renamed)), "single .npy array")
    bomb = tmp_path / "bomb.npz"  # a member whose .npy header declares 2**40 bytes
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2**20, 2**17)}
    )
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(1 << 20))
        archive.writestr("y.npy", b"")
    refused(capsys, train_args(tmp_path, data=str(bomb)), "'x'", "more than")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{}, {}], dtype=object), y=np.zeros(2))
    refused(capsys, train_args(tmp_path, data=str(pickled)), "Python objects")


def test_weights_with_a_wrong_axis_under_dim_arithmetic_are_refused(tmp_path):
    mod = module_from_source((OUT / "makemore.py").read_text(), tmp_path, "mm_weights")
    data_dims = {"V": 27, "T": 3}  # what the word data fixes
    params = mod.init_params({**data_dims, "E": 4, "H": 6})
    check_weights(params, data_dims, mod, "w.npz")  # right: E and H read from C and b1
    params["W1"] = np.zeros((5 * 3, 6))  # W1[T * E, H] with E = 5, but C says E = 4
    with pytest.raises(SpecError, match=r"W1 has shape \(15, 6\).*W1\[E\*T, H\] with H = 6"):
        check_weights(params, data_dims, mod, "w.npz")
