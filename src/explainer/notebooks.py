"""Execute the explainer's notebooks with papermill and export them to HTML."""
from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable



def notebooks_dir() -> Path:
    """The repository's ``notebooks/`` folder (``$EXPLAINER_NOTEBOOKS`` overrides)."""
    env = os.environ.get("EXPLAINER_NOTEBOOKS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "notebooks"


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The notebooks in run order (their names start with a number); ``only`` filters by prefix or name."""
    paths = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) or p.stem == o for o in only)]
    return paths


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters`` cell, with their defaults."""
    import papermill as pm
    return {name: p["default"] for name, p in pm.inspect_notebook(str(path)).items()}


def check_parameters(path: Path, parameters: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a parameter the notebook does not declare (papermill only warns)."""
    declared = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"{path.name} has no parameter(s) {', '.join(unknown)}; "
                         f"it declares: {', '.join(sorted(declared))}")


# nbconvert's template and plotly's notebook renderer add <script src> tags for require.js and
# MathJax from a CDN. The explainer uses neither (plotly.js itself is embedded), and offline a
# page waits on them, so the exported HTML drops every remote script.
REMOTE_SCRIPT = re.compile(r"<script[^>]*\ssrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>", re.IGNORECASE)


def offline_html(body: str) -> str:
    """``body`` without any ``<script src="http(s)://...">`` tag (a page that opens offline)."""
    return REMOTE_SCRIPT.sub("", body)


# A tqdm bar: "desc:  40%|####      | 56/140 [00:10<00:15, 5.4img-step/s]".
PROGRESS_BAR = re.compile(r"^.*\d+%\|.*\|\s*[\d.]+[kM]?/[\d.]*[kM]?.*$")


def without_progress_bars(nb) -> None:
    """Drop progress bars from an executed notebook's outputs, in place: in an exported page a bar
    is frozen as its kernel first drew it ("0%|"), whether the work ran or the cache held it."""
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines = re.split(r"(?<=[\r\n])", output.get("text", ""))
                output["text"] = "".join(line for line in lines if not PROGRESS_BAR.match(line.strip("\r\n")))
                if not output["text"].strip():
                    continue
            elif "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                if PROGRESS_BAR.match(output["data"].get("text/plain", "").strip()):
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept


def _for_export(ipynb: Path):
    """An executed notebook as a page or deck shows it: no saved widget state (it would make the
    page fetch a widget manager), no progress bars."""
    import nbformat
    nb = nbformat.read(str(ipynb), as_version=4)
    nb.metadata.pop("widgets", None)
    without_progress_bars(nb)
    return nb


def export_html(ipynb: Path) -> Path:
    """Write ``<name>.html`` beside an executed notebook: self-contained, plotly.js embedded by
    the notebooks (``viz.setup_notebook``), no script loaded from the network."""
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter().from_notebook_node(_for_export(ipynb))
    html = ipynb.with_suffix(".html")
    html.write_text(offline_html(body), encoding="utf-8")
    return html


REVEAL_PACKAGE = "sphinx_revealjs"  # its wheel vendors reveal.js (MIT) under _static/revealjs
_REVEAL_PREFIX = "explainer-reveal"  # stands for reveal.js's folder until its files are inlined
_REVEAL_LINK = re.compile(r'<link[^>]*\shref="' + re.escape(_REVEAL_PREFIX) + r'/(dist/[\w/.-]+\.css)"[^>]*>')
_CSS_IMPORT = re.compile(r"@import\s+url\([^)]*\)\s*;")  # the theme's web fonts: the deck uses the system's


def reveal_dir() -> Path:
    """reveal.js's folder (``dist/``, ``plugin/``) inside the installed ``sphinx-revealjs`` wheel."""
    import importlib.util
    spec = importlib.util.find_spec(REVEAL_PACKAGE)
    folder = Path(spec.origin).parent / "_static" / "revealjs" if spec and spec.origin else None
    if folder is None or not (folder / "dist" / "reveal.js").is_file():
        raise FileNotFoundError("The slide decks need reveal.js from the sphinx-revealjs wheel: "
                                "pip install --no-deps -r requirements-nodeps.txt")
    return folder


def export_deck(ipynb: Path, theme: str = "white") -> Path:
    """Write ``<name>.slides.html`` beside an executed notebook: a reveal.js deck of its cells
    (their ``slideshow`` metadata, as in the present mode) that opens from disk with no network.
    reveal.js, its CSS and plotly.js are inlined; no script or style sheet is fetched."""
    from nbconvert import SlidesExporter
    reveal = reveal_dir()
    nb = _for_export(ipynb)
    exporter = SlidesExporter(extra_template_basedirs=[str(Path(__file__).parent / "templates")],
                              template_name="deck", reveal_url_prefix=_REVEAL_PREFIX, reveal_theme=theme)
    body, _ = exporter.from_notebook_node(nb, resources={"deck": {
        "reveal_js": (reveal / "dist" / "reveal.js").read_text(encoding="utf-8").replace("</script", "<\\/script")}})
    body = _REVEAL_LINK.sub(
        lambda m: f"<style>{_CSS_IMPORT.sub('', (reveal / m.group(1)).read_text(encoding='utf-8'))}</style>", body)
    deck = ipynb.with_suffix(".slides.html")
    deck.write_text(offline_html(body), encoding="utf-8")
    return deck


def export_decks(folder: str | os.PathLike) -> list[Path]:
    """A deck (``export_deck``) for every executed notebook in ``folder`` (e.g. ``build/``)."""
    executed = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not executed:
        raise FileNotFoundError(f"No executed notebooks in {folder}: run `explainer run --out {folder}` first")
    return [export_deck(path) for path in executed]


# What the notebooks' first cells import, and the widgets and subplots of ``explainer.ui`` and
# ``viz``. The next notebook's kernel starts, and loads these, while the current one runs: in
# class (warm cache) that start-up was about half of every notebook's time. Loaded without
# binding a name, so a notebook that lacks an import still fails; a module missing is skipped.
# Heavier libraries that only one notebook needs (scikit-learn, ~1 s) are left to it: with two
# cores, loading them in every kernel slows the notebook that runs beside it.
PRELOADED = ("pandas", "plotly.graph_objects", "plotly.subplots", "ipywidgets", "explainer.experiments",
             "explainer.ui", "explainer.viz", "explainer.results", "explainer.arms_race")


def start_kernel(cwd: str | os.PathLike, preload: tuple[str, ...] | None = None):
    """A started ``python3`` kernel (a jupyter_client kernel manager) whose process imports
    ``preload`` (default ``PRELOADED``) before it answers. ``handed_over(km)`` gives it to
    papermill; ``stop_kernel`` stops one that was never handed over."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    preload = PRELOADED if preload is None else preload
    code = (f"import importlib as _explainer_il\nfor _explainer_m in {tuple(preload)!r}:\n    try:\n"
            "        _explainer_il.import_module(_explainer_m)\n    except ImportError:\n        pass\n"
            "del _explainer_il, _explainer_m")
    km = AsyncKernelManager(kernel_name="python3")
    run_sync(km.start_kernel)(cwd=str(cwd), extra_arguments=[f"--IPKernelApp.exec_lines={code}"] if preload else [])
    return km


def handed_over(km) -> type:
    """A kernel manager class for ``papermill.execute_notebook(kernel_manager_class=...)`` whose
    one "new" instance is ``km``, already started: nbclient then runs the notebook on it and
    shuts it (and its client) down afterwards, as it does a kernel it started itself."""
    class HandedOver(type(km)):
        def __new__(cls, *args, **kwargs):
            return km  # not a HandedOver, so __init__ does not run again on it
    return HandedOver


def stop_kernel(km) -> None:
    """Shut a kernel from ``start_kernel`` down (at once: its notebook is done or failed)."""
    from jupyter_core.utils import run_sync
    if km is not None and km.has_kernel:
        run_sync(km.shutdown_kernel)(now=True)


def run_notebooks(profile: str = "classroom", data: str | None = None, out: str | os.PathLike = "build",
                  only: list[str] | None = None, extra: dict[str, Any] | None = None,
                  html: bool = True, progress: bool = True, slides: bool = False,
                  on_done: Callable[[str, float], None] | None = None) -> dict[str, float]:
    """Execute the notebooks in order into ``out`` (executed ``.ipynb`` and ``.html``, and with
    ``slides`` an offline reveal.js deck ``.slides.html`` each).

    Every notebook gets ``profile`` (and ``data`` when given) plus ``extra``; each must
    declare them all. Returns wall seconds per notebook's execution (its HTML export, and
    the next notebook's kernel start, overlap it); ``on_done(name, seconds)`` is called as each
    one finishes.
    """
    from .profiles import resolve
    resolve(profile)  # an unknown profile fails here, before any notebook runs
    if slides:
        reveal_dir()  # so does a missing reveal.js
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = notebook_paths(only)
    if not paths:
        raise FileNotFoundError(f"No notebooks matched under {notebooks_dir()}")
    # Headless runs show static figures: ipywidgets need a live kernel, static plotly keeps
    # hover and zoom in the exported HTML.
    # Notebooks without widgets do not declare the parameter; it is passed to those that do.
    headless = {"widgets": False}
    parameters: dict[str, Any] = {"profile": profile, **(extra or {})}
    if data is not None:
        parameters["data"] = str(Path(data).resolve()) if Path(data).exists() else str(data)
    timings = {}
    # The first kernel boots while the parameters are checked; each next one while the notebook
    # before it runs. Each HTML export runs in a thread while the next notebook's kernel works
    # (2 cores: the export is this process's Python, the notebook another process).
    kernels = [start_kernel(paths[0].parent)] + [None] * (len(paths) - 1)
    with ThreadPoolExecutor(max_workers=1) as exporter:
        exports = []
        try:
            for path in paths:  # check them all before spending minutes on the first
                check_parameters(path, parameters)
            for i, path in enumerate(paths):
                start = time.perf_counter()
                target = out / path.name
                if i + 1 < len(paths):
                    kernels[i + 1] = start_kernel(paths[i + 1].parent)
                _execute(path, target, {**{k: v for k, v in headless.items() if k in notebook_parameters(path)},
                                        **parameters}, progress, kernels[i])
                if html:
                    exports.append(exporter.submit(export_html, target))
                if slides:
                    exports.append(exporter.submit(export_deck, target))
                timings[path.stem] = time.perf_counter() - start
                print(f"{path.name}: {timings[path.stem]:.1f} s -> {target}", flush=True)
                if on_done is not None:
                    on_done(path.stem, timings[path.stem])
        finally:
            for km in kernels:  # a failed notebook's, and the next one's
                stop_kernel(km)
        for done in exports:
            done.result()  # an export error surfaces here
    return timings


def _execute(path: Path, target: Path, parameters: dict[str, Any], progress: bool, km) -> None:
    """Run one notebook with papermill on the started kernel ``km`` (which it shuts down).

    The executed notebook is written once, when it ends (or fails), not after every cell: with
    its figures it weighs megabytes, and the writes were about a second of each warm notebook.
    Its kernel holds nothing to keep, so it is stopped at once rather than asked to wind down.
    """
    import papermill as pm
    pm.execute_notebook(str(path), str(target), parameters=parameters, cwd=str(path.parent), progress_bar=progress,
                        kernel_name="python3", kernel_manager_class=handed_over(km),
                        request_save_on_cell_execute=False, shutdown_kernel="immediate")


def slide_types(cells) -> list[str]:
    """The RISE slide type of each cell, for presenting a notebook (``jupyterlab-rise``): a
    heading starts a slide; the parameters and set-up cells are skipped; other text starts a
    sub-slide that carries the code cell right after it; a code cell after code gets its own."""
    types, previous = [], None
    for i, cell in enumerate(cells):
        source = cell["source"].lstrip()
        if "parameters" in cell.get("metadata", {}).get("tags", []) or (
                cell["cell_type"] == "code" and previous == "parameters"):
            kind = "skip"
        elif i == 0 or (cell["cell_type"] == "markdown" and source.startswith(("# ", "## "))):
            kind = "slide"
        elif cell["cell_type"] == "markdown":
            kind = "subslide"
        else:
            kind = "-" if previous == "markdown" else "subslide"
        types.append(kind)
        previous = "parameters" if "parameters" in cell.get("metadata", {}).get("tags", []) else cell["cell_type"]
    return types


def tag_slides() -> list[Path]:
    """Write ``slide_types`` into every notebook's cells, in the py:percent source and its .ipynb
    (``make notebooks-sync`` runs it). Returns the sources written."""
    import jupytext
    import nbformat
    written = []
    for py in sorted(notebooks_dir().glob("[0-9][0-9]_*.py")):
        for path, read, write in ((py, jupytext.read, lambda nb, p: jupytext.write(nb, p, fmt="py:percent")),
                                  (py.with_suffix(".ipynb"), lambda p: nbformat.read(p, as_version=4),
                                   lambda nb, p: nbformat.write(nb, p))):  # the .ipynb keeps its cell ids
            nb = read(path)
            kinds = slide_types(nb.cells)
            if [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells] != kinds:
                for cell, kind in zip(nb.cells, kinds):
                    cell.metadata["slideshow"] = {"slide_type": kind}
                write(nb, path)
                written.append(path)
    return written
