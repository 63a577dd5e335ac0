"""Set-up hygiene: pins agree, notebooks are paired and clean, CI parameters exist."""
import json
import re
from pathlib import Path

import pytest

from explainer import notebooks

REPO = Path(__file__).resolve().parents[1]


def pins(path):
    return sorted(l.strip() for l in path.read_text().splitlines() if l.strip() and not l.startswith("#"))


def test_environment_yml_agrees_with_requirements():
    text = (REPO / "environment.yml").read_text()
    pip_part = text.split("- pip:", 1)[1]
    env_pins = sorted(m.group(1) for m in re.finditer(r"^\s+- (\S+==\S+)\s*$", pip_part, re.M))
    assert env_pins == sorted(pins(REPO / "requirements.txt") + pins(REPO / "requirements-test.txt"))
    assert "python=3.11" in text and "conda-forge" in text
    assert all("==" in p for p in pins(REPO / "requirements.txt"))


def test_notebooks_are_paired_and_have_no_outputs():
    ipynbs = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert ipynbs
    for nb in ipynbs:
        assert nb.with_suffix(".py").exists(), f"{nb.name} has no py:percent pair"
        cells = json.loads(nb.read_text())["cells"]
        assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code"), f"{nb.name} has outputs"
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb.name} needs exactly one parameters cell"


def test_pairs_are_in_sync():
    jupytext = pytest.importorskip("jupytext")
    for py in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py")):
        from_py = jupytext.read(py)
        from_nb = jupytext.read(py.with_suffix(".ipynb"))
        src = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
        assert src(from_py) == src(from_nb), f"{py.name} and its .ipynb differ: run make notebooks-sync"


def test_ci_parameters_exist_in_every_notebook():
    """papermill only warns about unknown parameters; we check what CI passes is declared."""
    ci_parameters = {"profile": "ci", "data": "orl"}  # what every notebook gets; "widgets" only where declared
    for path in notebooks.notebook_paths():
        declared = notebooks.notebook_parameters(path)
        assert set(ci_parameters) <= set(declared), path.name
        after_parameters = path.with_suffix(".py").read_text().split('tags=["parameters"]', 1)[1].split("# %%", 1)[1]
        uses_widgets = "widgets" in after_parameters
        assert uses_widgets == ("widgets" in declared), f"{path.name}: declare widgets iff a cell uses it"
        assert "profile" in declared and declared["profile"] in ("'classroom'", '"classroom"')


def test_every_notebook_is_a_slide_deck():
    """Present mode (RISE in JupyterLab): each cell carries the slide type ``slide_types`` gives,
    so a new cell cannot slip in untagged; the title opens the deck, set-up cells are skipped."""
    for nb_path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb_path.read_text())["cells"]
        for c in cells:
            c["source"] = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        got = [c.get("metadata", {}).get("slideshow", {}).get("slide_type") for c in cells]
        assert got == notebooks.slide_types(cells), f"{nb_path.name}: run make notebooks-sync"
        assert got[0] == "slide" and "skip" in got
