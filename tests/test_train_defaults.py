"""``derive train SPEC --data D`` with no other option: a good model, a readable progress bar.

The floors are the issue's (iris ≥ 95 %, digits ≥ 96 %, xor 100 %); scikit-learn's
``MLPClassifier()`` on the same split is measured beside ours by
``benchmarks/train_defaults.py`` (results in the README).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from derive import cli


@pytest.mark.parametrize(
    ("spec", "data", "floor"),
    [("seed003_sigmoid", "iris", 0.95), ("seed002", "digits", 0.96), ("seed004", "xor", 1.0)],
)
def test_defaults_reach_the_floor(spec, data, floor, tmp_path, capsys):
    weights = tmp_path / "w.npz"
    assert cli.main(["train", spec, "--data", data, "--out", str(weights)]) == 0
    err = capsys.readouterr().err
    assert "epoch/s" in err or "s/epoch" in err  # tqdm's bar: its rate
    assert (
        cli.main(["test", spec, "--data", data, "--weights", str(weights), "--format", "json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] >= floor


def test_early_stopping_says_which_epoch_was_kept(tmp_path, capsys):
    code = cli.main(
        [
            "train",
            "seed003_sigmoid",
            "--data",
            "iris",
            "--lr",
            "0.3",
            "--patience",
            "3",
            "--restore-best",
            "--out",
            str(tmp_path / "w.npz"),
        ]
    )
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if ln.startswith("early stopping at epoch"))
    stopped = int(line.split("epoch ")[1].split("/")[0])
    kept = int(line.split("kept the params of epoch ")[1].split(" ")[0])
    assert code == 0 and stopped == kept + 3 and "did not improve for 3 epochs" in line
    assert line.endswith(", then 10 epochs on every training example")  # the default


def test_by_default_the_last_params_are_kept_and_the_note_says_so(tmp_path, capsys):
    options = ["--lr", "0.3", "--patience", "3", "--final-epochs", "0"]
    argv = ["train", "seed003_sigmoid", "--data", "iris", *options, "--out", str(tmp_path / "w")]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if ln.startswith("early stopping at epoch"))
    stopped = int(line.split("epoch ")[1].split("/")[0])
    assert f"kept the last params, epoch {stopped} (val loss " in line
    lowest = int(line.rsplit(" at epoch ", 1)[1].split(")")[0])
    assert lowest == stopped - 3 and "every training example" not in line


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_person_hears_at_once_and_quiet_prints_nothing(tmp_path, capsys, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    cli.main(
        ["train", "seed004", "--data", "xor", "--epochs", "3", "--out", str(tmp_path / "w.npz")]
    )
    # the first line comes before deriving and generating, which take seconds
    assert terminal.getvalue().startswith("deriving seed004 and generating its module…\n")
    monkeypatch.undo()
    cli.main(["train", "seed004", "--data", "xor", "--quiet", "--out", str(tmp_path / "w.npz")])
    assert capsys.readouterr().err == ""


def test_tiny_data_trains_on_every_example(tmp_path, capsys):
    cli.main(["train", "seed004", "--data", "xor", "--out", str(tmp_path / "w.npz")])
    err = capsys.readouterr().err
    assert "4 training examples: too few to hold out a validation part" in err


def test_help_is_light_and_shows_defaults():
    code = (
        "import sys\n"
        "from derive.cli import build_parser\n"
        "p = build_parser()\n"
        "heavy = sorted(m for m in ('sympy', 'numpy', 'jinja2', 'symengine') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.choices and "grad" in a.choices).choices
    for name, command in sub.items():
        text = command.format_help()
        for action in command._actions:
            if action.default not in (None, False, [], "==SUPPRESS=="):
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action)
    train = " ".join(sub["train"].format_help().split())
    assert "(default: adam)" in train and "(default: 50)" in train


def test_plot_for_a_report_svg(tmp_path, capsys):
    svg = tmp_path / "curve.svg"
    cli.main(
        [
            "train",
            "seed003_sigmoid",
            "--data",
            "iris",
            "--epochs",
            "30",
            "--quiet",
            "--out",
            str(tmp_path / "w.npz"),
            "--plot",
            str(svg),
        ]
    )
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text
    assert "seed003_sigmoid on iris" in text  # the title: spec and data
    for label in ("training loss", "validation loss", "validation accuracy", "kept params"):
        assert label in text
    assert not list(tmp_path.glob("*.tmp*"))


def test_trained_repr_shows_the_kept_epochs_accuracy_not_the_last():
    from codegen.train import Trained

    history = {
        "loss": [3.0, 2.0, 1.0],
        "val_loss": [3.0, 1.0, 2.0],
        "val_accuracy": [0.5, 0.9, 0.7],
    }
    kept = Trained("s", "d", {}, history, None, None, None, note="early stopping …")
    assert repr(kept) == "<Trained s on d: 3 epochs, kept epoch 2, val acc 90.0%>"
    # no early stopping (no note): the module keeps the last epoch's params
    last = Trained("s", "d", {}, history, None, None, None)
    assert repr(last) == "<Trained s on d: 3 epochs, kept epoch 3, val acc 70.0%>"
    note = "early stopping …"
    last = Trained("s", "d", {}, history, None, None, None, note=note, restore_best=False)
    assert repr(last) == "<Trained s on d: 3 epochs, kept epoch 3, val acc 70.0%>"
    bare = Trained(
        "s", "d", {}, {"loss": [1.0], "val_loss": [], "val_accuracy": []}, None, None, None
    )
    assert repr(bare) == "<Trained s on d: 1 epochs>"
