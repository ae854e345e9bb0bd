"""The example notebook runs from top to bottom (nbclient, a real kernel), so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "tour.ipynb"


def test_the_tour_notebook_runs_and_shows_html():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    resources = {"metadata": {"path": str(NOTEBOOK.parent)}}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources=resources).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(html) >= 4 and all("<math" in h or "verdicts" in h for h in html)
    assert any('class="first-wrong"' in h for h in html)  # the verify table
    assert any("Proofs" in h for h in html)
    text = "".join(o.get("text", "") for o in outputs)
    assert "test accuracy" in text
