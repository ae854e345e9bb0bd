"""The command's exit-status contract: 0 done, 1 failed proof, 2 bad input, 3 bug, 130 Ctrl-C.

Never a traceback: bad input is one line ``file:line:col: error: …`` (or
``<options>: error: …``), a bug of ours one line ``internal error: …``
(the traceback only with ``--debug`` or ``DERIVE_DEBUG=1``), Ctrl-C one line;
output to a terminal that cannot show Unicode (cp1252) still works.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from derive import cli
from derive.cli import main

HEAD = "input y[B, n]\ntarget t[B, n]\nparam W[n, n]\nz = y @ W\n"


def run(*argv, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "derive.cli", *argv],
        capture_output=True,
        env=full_env,
        check=False,
        timeout=300,
    )


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    for text, where in [
        (HEAD + "L = sum(z) * 1e999", ":5:14: error:"),
        (HEAD + "L = sum(" + "(" * 250 + "z" + ")" * 250 + ")", ":5:40: error:"),
        (HEAD + "L = sum(z) # \u2028L = 1/0", None),
    ]:
        path = tmp_path / "net.nn"
        path.write_text(text, encoding="utf-8")
        code = main(["grad", str(path)])
        err = capsys.readouterr().err
        if where is None:
            assert code == 0 and err == ""
        else:
            assert code == 2 and err.startswith(f"{path}{where}") and err.count("\n") == 1


def test_a_bad_option_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["grad", "seed000", "--format", "pdf"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("<options>: error: argument --format") and err.count("\n") == 1


def test_a_bug_is_one_line_internal_error_and_exit_3(monkeypatch, capsys):
    def broken(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    monkeypatch.delenv("DERIVE_DEBUG", raising=False)
    assert main(["list"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("internal error: ZeroDivisionError: division by zero")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["list", "--debug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("internal error:")
    monkeypatch.setenv("DERIVE_DEBUG", "1")
    assert main(["list"]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_interrupted_while_starting_is_one_line_and_130(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["list"]) == 130
    assert capsys.readouterr().err == "derive: interrupted\n"


def test_the_package_imports_sympy_only_when_needed():
    code = "import sys, derive, derive.cli; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("delay", [0.6, 2.0])
def test_ctrl_c_prints_one_line_and_exits_130(delay, tmp_path):
    # a spec that takes seconds to derive (99 equations), so the signal lands
    # while importing or deriving, never after the end
    lines = ["input x[B, n]", "param W[n, n]", "z0 = x @ W"]
    lines += [f"z{k} = tanh(z{k - 1}) * 0.5 + z{k - 1}" for k in range(1, 99)]
    spec = tmp_path / "chain.nn"
    spec.write_text("\n".join([*lines, "L = sum(z98 ** 2)"]), encoding="utf-8")
    for attempt in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "derive.cli", "grad", str(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(delay * 2**attempt)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        # on a loaded machine the signal can land before the interpreter has installed
        # its own SIGINT handler (the process dies of the signal, -2): that is not our
        # code's doing, so send it again later; any other outcome is judged
        if proc.returncode != -signal.SIGINT:
            break
    assert proc.returncode == 130, err
    assert err.decode() == "derive: interrupted\n"


def test_output_to_a_cp1252_terminal_works(tmp_path):
    proc = run("grad", "seed000", env={"PYTHONIOENCODING": "cp1252"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode("cp1252")
    assert "\\u2202L/\\u2202W = x\\u1d40 \\u03b4u" in out  # ∂L/∂W = xᵀ δu, escaped
    bad = tmp_path / "δ.nn"
    bad.write_text(HEAD + "L = sum(\u03b4)", encoding="utf-8")
    proc = run("grad", str(bad), env={"PYTHONIOENCODING": "cp1252"})
    assert proc.returncode == 2
    err = proc.stderr.decode("cp1252")
    assert "unknown name '\\u03b4'" in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_closed_pipe_is_not_an_error():
    proc = subprocess.Popen(
        [sys.executable, "-m", "derive.cli", "grad", "seed004", "--elementwise"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=300)
    assert proc.returncode == 0 and err == b""
