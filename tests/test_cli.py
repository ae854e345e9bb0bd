"""`derive list` and `derive grad` in every output format."""

from __future__ import annotations

import json
import subprocess
import sys

from derive.cli import main


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_list_names_every_bundled_spec(capsys):
    code, out = run(capsys, "list")
    assert code == 0
    for name in ("seed000", "seed002", "seed003", "seed004", "seed004_deep"):
        assert name in out


def test_grad_text_shows_forward_deltas_gradients_and_shapes(capsys):
    code, out = run(capsys, "grad", "seed000")
    assert code == 0
    for line in ("u = x W", "δu = δh ⊙ relu'(u)", "∂L/∂W = xᵀ δu", "[n_x×n_h]"):
        assert line in out


def test_grad_check_reports_three_passed_proofs(capsys):
    code, out = run(capsys, "grad", "seed004", "--check")
    assert code == 0
    assert out.count("✓") == 3 and "✗" not in out


def test_grad_elementwise_and_steps(capsys):
    code, out = run(capsys, "grad", "seed000", "--elementwise", "--steps")
    assert code == 0
    assert "δu[i, j] = relu'(u[i, j])*δh[i, j]" in out
    assert "Kronecker deltas summed:" in out and "matrix form:  xᵀ δu" in out


def test_grad_json_has_the_documented_fields(capsys):
    code, out = run(capsys, "grad", "seed002", "--format", "json", "--check")
    doc = json.loads(out)
    assert code == 0 and doc["loss"] == "L"
    for item in [*doc["steps"], *doc["gradients"].values()]:
        assert {"name", "shape", "text", "latex", "numpy"} <= set(item)
    assert doc["gradients"]["b1"]["numpy"] == "delta_z1.sum(axis=0)"
    assert all(p["passed"] for p in doc["check"].values())


def test_grad_latex_and_markdown(capsys):
    _, out = run(capsys, "grad", "seed000", "--format", "latex")
    assert r"\frac{\partial L}{\partial W} &= x^{\top} \, \delta_{u}" in out
    _, out = run(capsys, "grad", "seed000", "--format", "markdown")
    assert "| quantity | shape | matrix form | NumPy |" in out and "`x.T @ delta_u`" in out


def test_console_script_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "derive.cli", "grad", "seed000"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "∂L/∂S = hᵀ δy" in proc.stdout


def test_python_api_and_jupyter_rendering():
    import derive

    d = derive.load("seed000")
    g = d.gradients["W"]
    assert str(g.matrix) == "x.T*delta_u"
    assert g._repr_latex_().startswith("$\\displaystyle \\frac{\\partial L}")
    assert "Sum" in str(g.elementwise.rhs)
