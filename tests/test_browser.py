"""The standalone page in a real browser: headless Chromium lays the MathML out.

The page is rendered twice, as written and with every ``<math>`` element
removed; the math must add ink where each equation stands (MathML laid
out, not blank), and the page's text outside the math carries no raw TeX.
Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
from PIL import Image

import derive
from derive import html, report

WIDTH, HEIGHT = 1000, 1200


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is needed: apt-get install -y chromium (see .ci/run)"
    return found


def _screenshot(page: str, tmp_path, name: str) -> np.ndarray:
    src, png = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    src.write_text(page, encoding="utf-8")
    subprocess.run(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={png}",
            src.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return np.asarray(Image.open(png).convert("L"), dtype=float)


def test_chromium_lays_out_the_mathml(tmp_path):
    d = derive.load("seed000")
    page = html.page("seed000", report.html_body(d))  # the page, less the spec's text
    no_math = re.sub(r"<math.*?</math>", "", page, flags=re.S)
    with_math = _screenshot(page, tmp_path, "page")
    without = _screenshot(no_math, tmp_path, "plain")
    assert with_math.shape == (HEIGHT, WIDTH)
    ink = with_math < 200
    assert ink.mean() > 0.005  # not blank
    # the math is most of the page's ink: 9 equations with their shapes
    assert ink.sum() > 1.5 * (without < 200).sum()
    # and the 9 equations are laid out one under the other: 9 bands of ink (and a
    # gap between each) in the column of the right-hand sides, below the headings
    rhs = ink[:, 60:300].any(axis=1)
    starts = np.flatnonzero(np.diff(rhs.astype(int)) == 1)
    assert len(starts) >= 9
    text = re.sub(r"<math.*?</math>|<style>.*?</style>|<[^>]+>", "", page, flags=re.S)
    assert "\\" not in text and "\\frac" not in page and "\\delta" not in page
