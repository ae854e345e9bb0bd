"""`derive train` and `derive test` on the seeds' data: accuracies, curves, weights, errors."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from derive.cli import main


def train(capsys, *argv) -> str:
    assert main(["train", *argv]) == 0
    return capsys.readouterr().err


def test_report(capsys, *argv) -> dict:
    assert main(["test", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


test_report.__test__ = False  # a helper, not a test


def test_iris_reaches_95_percent(tmp_path, capsys):
    w = str(tmp_path / "iris.npz")
    log = train(
        capsys,
        "seed003_sigmoid",
        "--data",
        "iris",
        "--epochs",
        "200",
        "--batch-size",
        "8",
        "--lr",
        "0.5",
        "--optimizer",
        "sgd",
        "--patience",
        "1000",  # every epoch: the README's command, as it stood before early stopping
        "--dim",
        "h1=8",
        "--dim",
        "h2=8",
        "--out",
        w,
    )
    assert "200/200" in log and "val_acc" in log  # the progress bar's last state
    report = test_report(capsys, "seed003_sigmoid", "--data", "iris", "--weights", w)
    assert report["accuracy"] >= 0.95
    assert np.array(report["confusion"]).sum() == report["examples"] == 45


def test_digits_reaches_96_percent_with_a_learning_curve(tmp_path, capsys):
    from PIL import Image

    w, png = str(tmp_path / "digits.npz"), tmp_path / "curve.png"
    train(
        capsys,
        "seed002",
        "--data",
        "digits",
        "--epochs",
        "40",
        "--lr",
        "0.005",
        "--optimizer",
        "adam",
        "--dim",
        "n_h1=64",
        "--dim",
        "n_h2=32",
        "--out",
        w,
        "--plot",
        str(png),
        "--patience",
        "10",
        "--final-epochs",
        "0",  # the defaults' floor test trains them; here the curve, at the old cost
    )
    assert test_report(capsys, "seed002", "--data", "digits", "--weights", w)["accuracy"] >= 0.96
    with Image.open(png) as image:
        assert image.size == (900, 600)  # 7.5 × 5 in at 120 dpi: reads in a report


def test_xor_is_learned_exactly(tmp_path, capsys):
    w = str(tmp_path / "xor.npz")
    train(
        capsys,
        "seed004",
        "--data",
        "xor",
        "--epochs",
        "300",
        "--batch-size",
        "4",
        "--lr",
        "0.05",
        "--optimizer",
        "adam",
        "--dim",
        "n_h=8",
        "--val-fraction",
        "0",
        "--seed",
        "1",
        "--out",
        w,
    )
    report = test_report(capsys, "seed004", "--data", "xor", "--weights", w, "--seed", "1")
    assert report["accuracy"] == 1.0


def test_seed000_loss_falls_as_in_its_program(tmp_path):
    import codegen

    model = codegen.train(
        "seed000",
        "seed000",
        epochs=50,
        batch_size=64,
        lr=1e-5,
        optimizer="sgd",  # as its program trains it
        val_fraction=0,
        dims={"n_h": 100},
        out=tmp_path / "w.npz",
    )
    losses = model.history["loss"]
    assert len(losses) == 50 and losses[-1] < 0.5 * losses[0]
    assert all(b <= a for a, b in zip(losses, losses[1:], strict=False))


def test_weights_are_saved_as_npz_and_npy(tmp_path, capsys):
    w = tmp_path / "out" / "xor.npz"
    train(
        capsys,
        "seed004",
        "--data",
        "xor",
        "--epochs",
        "2",
        "--val-fraction",
        "0",
        "--out",
        str(w),
        "--npy",
    )
    with np.load(w) as f:
        assert {"W1", "W2", "__mean__", "__std__"} <= set(f.files)
    assert sorted(p.name for p in (tmp_path / "out" / "xor").iterdir()) == [
        "W1.npy",
        "W2.npy",
        "mean.npy",
        "std.npy",
    ]
    assert not list((tmp_path / "out").glob("*.tmp"))


def write_idx(path, array, gz=False):
    dtype_code, magic_dims = 0x08, array.ndim
    header = struct.pack(">I", (dtype_code << 8) | magic_dims)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_mnist_from_idx_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for part, n in (("train", 60), ("t10k", 20)):
        labels = rng.integers(0, 10, n)
        images = np.zeros((n, 28, 28))
        for i, k in enumerate(labels):  # a learnable pattern: a bright row per class
            images[i, 2 * k + 3, :] = 255
        write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", images, gz=True)
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte", labels)
    w = str(tmp_path / "mnist.npz")
    train(
        capsys,
        "seed002",
        "--data",
        f"mnist:{tmp_path}",
        "--epochs",
        "30",
        "--lr",
        "0.01",
        "--optimizer",
        "adam",
        "--dim",
        "n_h1=32",
        "--dim",
        "n_h2=16",
        "--out",
        w,
    )
    report = test_report(capsys, "seed002", "--data", f"mnist:{tmp_path}", "--weights", w)
    assert report["examples"] == 20 and report["accuracy"] >= 0.9


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["seed002", "--data", "nope"], "nope"),
        (["seed002", "--data", "mnist:/no/such/dir"], "/no/such/dir"),
        (["seed002", "--data", "iris", "--dim", "n_h1=x"], "--dim expects NAME=SIZE"),
    ],
)
def test_bad_input_is_a_clear_error(argv, words, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "w.npz")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_weights_of_another_spec_are_refused(tmp_path, capsys):
    w = str(tmp_path / "xor.npz")
    train(capsys, "seed004", "--data", "xor", "--epochs", "1", "--val-fraction", "0", "--out", w)
    assert main(["test", "seed002", "--data", "iris", "--weights", w]) == 2
    assert "the weights lack" in capsys.readouterr().err
