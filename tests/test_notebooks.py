"""Every notebook runs headless under papermill with the ci profile (what CI and teachers rely on)."""
import json
import re

import pytest

from explainer import notebooks

NOTEBOOKS = [p.stem for p in notebooks.notebook_paths()]


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_ci_profile(name, tmp_path):
    timings = notebooks.run_notebooks("ci", out=tmp_path, only=[name], progress=False)
    assert name in timings
    executed = json.loads((tmp_path / f"{name}.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    html = (tmp_path / f"{name}.html").read_text()
    assert not re.search(r"<script[^>]+src=[\"']https?://cdn\.plot\.ly", html)  # plotly.js is embedded
    assert "Plotly.newPlot" in html or "Plotly.react" in html
