"""Every notebook runs headless under papermill with the ci profile (what CI and teachers rely on)."""
import json
import re

import pytest

from explainer import notebooks

NOTEBOOKS = [p.stem for p in notebooks.notebook_paths()]


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_ci_profile(name, ci_notebook):
    folder = ci_notebook(name)
    executed = json.loads((folder / f"{name}.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    html = (folder / f"{name}.html").read_text()
    assert not re.search(r"<script[^>]+src=[\"']https?://cdn\.plot\.ly", html)  # plotly.js is embedded
    assert "Plotly.newPlot" in html or "Plotly.react" in html
    # what a class sees: no traceback, no Python warning, no bar left at 0 % for work the cache
    # held, no settings printed as a raw dict
    streams = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
                      if o.get("output_type") == "stream" and o.get("name") == "stderr")
    assert "Traceback" not in html
    assert not re.search(r"\w+Warning\b", streams), streams[:500]
    assert not re.search(r"(?<!\d)0%\|", html)
    assert not re.search(r"\{&#x27;data&#x27;: |\{'data': ", html)
    assert_offline_deck(folder / f"{name}.slides.html", executed)
    if name.startswith(("01", "02", "04")):  # the cloak at work, the trainer adapting, the trainer waiting
        assert "Plotly.addFrames(" in html and "u25b6 play" in html, "no plotly animation with a play button"
    if name == "02_adaptive_defence":  # which users the trainer's settings were chosen on, and that the defaults were not
        assert "Settings chosen on" in html and "held-out public users" in html and "partly on the test users" in html
        # ORL's ci setting leaves people outside it: the same models are scored on them too
        assert "on people outside the setting: fawkes-v0.3" in html and "never chosen on" in html
        # the deployed models are the chosen ones trained again with the held-out users' pairs
        from explainer import results
        report = results.recorded("orl", "ci")["adaptive"]
        assert report["results"] and all(r["refit"] and r["selected"] for r in report["results"])
        refit = [r for r in report["candidates"] if r["refit"]]
        assert {r["recipe"] for r in refit} == {r["recipe"] for r in report["results"]}
        chosen = {(r["recipe"], r["start"]) for r in report["candidates"] if r["selected"] and not r["refit"]}
        assert chosen == {(r["recipe"], r["start"]) for r in refit}  # the depth the held-out users picked


def assert_offline_deck(deck, executed: dict) -> None:
    """A reveal.js deck that opens from disk: reveal.js inlined, nothing fetched, a section per slide."""
    html = deck.read_text()
    assert "Reveal.initialize(" in html and "reveal.js 5." in html
    assert not re.search(r"<script[^>]*\ssrc=", html), "a script is loaded, not inlined"
    assert not re.search(r"<link[^>]*\shref=", html), "a style sheet is loaded, not inlined"
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", html), "CSS fetches a resource"
    starts = sum(c["metadata"].get("slideshow", {}).get("slide_type") in ("slide", "subslide") for c in executed["cells"])
    assert html.count("<section") >= starts
    assert "Traceback" not in html and not re.search(r"(?<!\d)0%\|", html)


def test_exported_pages_keep_no_progress_bar():
    import nbformat
    bar = "fawkes-v0.3 (min):   0%|          | 0/140 [00:00<?, ?img-step/s]"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("run()", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=bar + "\r" + bar.replace("  0%", "100%") + "\n"),
        nbformat.v4.new_output("stream", name="stderr", text="explainer: a note worth keeping\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": bar,
                                                     "application/vnd.jupyter.widget-view+json": {"model_id": "x"}}),
        nbformat.v4.new_output("display_data", data={"text/plain": "a figure"}),
    ])])
    notebooks.without_progress_bars(nb)
    outputs = nb.cells[0].outputs
    assert [o.get("text", o.get("data", {}).get("text/plain")) for o in outputs] == [
        "explainer: a note worth keeping\n", "a figure"]


def _tiny_notebooks(folder, cells: dict[str, str]):
    """Notebooks named like the explainer's (``NN_name.ipynb``), each a parameters cell and one cell."""
    import nbformat
    folder.mkdir()
    for name, source in cells.items():
        params = nbformat.v4.new_code_cell('profile: str = "classroom"', metadata={"tags": ["parameters"]})
        nbformat.write(nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(source)],
                                                metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                         "display_name": "Python 3"}}),
                       folder / f"{name}.ipynb")
    return folder


def _cell_output(path) -> str:
    import nbformat
    executed = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


def _kernels_running() -> list:
    """The ipykernel processes this test process started and that are still alive."""
    import psutil
    return [p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]


REPORT = ("import os, sys, psutil\n"
          "print(os.getpid(), 'colorsys' in sys.modules, 'colorsys' in globals(), "
          "any(n.startswith('_explainer') for n in globals()), "
          "sum('ipykernel' in ' '.join(p.cmdline()) for p in psutil.Process(os.getppid()).children()))")


def test_each_notebook_gets_a_fresh_kernel_that_loaded_the_imports_before_its_turn(tmp_path, monkeypatch):
    """The next notebook's kernel starts while one runs, with ``PRELOADED`` imported but no name
    bound; every notebook still has a kernel of its own, counting cells from 1, and none is left."""
    import nbformat
    folder = _tiny_notebooks(tmp_path / "nbs", {"01_a": REPORT, "02_b": REPORT, "03_c": REPORT})
    monkeypatch.setenv("EXPLAINER_NOTEBOOKS", str(folder))
    monkeypatch.setattr(notebooks, "PRELOADED", ("colorsys", "a_module_that_is_not_installed"))
    done = []
    seconds = notebooks.run_notebooks("ci", out=tmp_path / "out", html=False, progress=False,
                                      on_done=lambda name, s: done.append(name))
    assert done == list(seconds) == ["01_a", "02_b", "03_c"]
    reports = [_cell_output(tmp_path / "out" / f"{n}.ipynb").split() for n in done]
    assert len({r[0] for r in reports}) == 3  # three kernels
    assert all(r[1:4] == ["True", "False", "False"] for r in reports), reports  # loaded, no name bound
    assert [r[4] for r in reports] == ["2", "2", "1"]  # the next notebook's kernel runs beside this one
    counts = [[c.execution_count for c in nbformat.read(tmp_path / "out" / f"{n}.ipynb", as_version=4).cells]
              for n in done]
    assert counts == [[1, 2, 3]] * 3  # parameters, papermill's injected ones, the cell: counted from 1
    assert not _kernels_running()


def test_a_failing_notebook_leaves_no_kernel_running(tmp_path, monkeypatch):
    import papermill as pm
    folder = _tiny_notebooks(tmp_path / "nbs", {"01_a": "raise RuntimeError('broken')", "02_b": REPORT})
    monkeypatch.setenv("EXPLAINER_NOTEBOOKS", str(folder))
    monkeypatch.setattr(notebooks, "PRELOADED", ())
    with pytest.raises(pm.PapermillExecutionError, match="broken"):
        notebooks.run_notebooks("ci", out=tmp_path / "out", html=False, progress=False)
    assert not (tmp_path / "out" / "02_b.ipynb").exists()
    failed = json.loads((tmp_path / "out" / "01_a.ipynb").read_text())  # written once, at the end, with its error
    assert [o["evalue"] for c in failed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"] == ["broken"]
    assert not _kernels_running()


def test_a_notebook_with_an_unknown_parameter_runs_nothing_and_leaves_no_kernel(tmp_path, monkeypatch):
    folder = _tiny_notebooks(tmp_path / "nbs", {"01_a": REPORT})
    monkeypatch.setenv("EXPLAINER_NOTEBOOKS", str(folder))
    monkeypatch.setattr(notebooks, "PRELOADED", ())
    with pytest.raises(ValueError, match="not_a_parameter"):
        notebooks.run_notebooks("ci", out=tmp_path / "out", html=False, progress=False, extra={"not_a_parameter": 1})
    assert not (tmp_path / "out" / "01_a.ipynb").exists()
    assert not _kernels_running()


def test_each_executed_notebook_is_written_once_not_after_every_cell(tmp_path, monkeypatch):
    import papermill.engines
    import papermill.execute
    folder = _tiny_notebooks(tmp_path / "nbs", {"01_a": "x = 1\nx", "02_b": "y = 2\ny"})
    monkeypatch.setenv("EXPLAINER_NOTEBOOKS", str(folder))
    monkeypatch.setattr(notebooks, "PRELOADED", ())
    writes = []
    for module in (papermill.engines, papermill.execute):
        real = module.write_ipynb
        monkeypatch.setattr(module, "write_ipynb", lambda nb, path, real=real, **kw: writes.append(path) or real(nb, path, **kw))
    notebooks.run_notebooks("ci", out=tmp_path / "out", html=False, progress=False)
    assert sorted(str(p).rsplit("/", 1)[-1] for p in writes) == ["01_a.ipynb", "02_b.ipynb"]
    last = json.loads((tmp_path / "out" / "02_b.ipynb").read_text())["cells"][-1]
    assert "".join(last["outputs"][0]["data"]["text/plain"]) == "2"  # the one write holds every cell's output


def test_the_preloaded_modules_exist():
    """A name mistyped in ``PRELOADED`` would be skipped in silence by the kernels."""
    import importlib
    for name in notebooks.PRELOADED:
        importlib.import_module(name)
