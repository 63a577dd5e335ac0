"""Figures for the notebooks: pure functions that return plotly figures, and a thin widget layer.

The model/view split: ``*_figure`` functions take arrays and return ``go.Figure``; the
``*Widget`` classes hold a ``go.FigureWidget`` plus ipywidgets controls and update the
figure in ``batch_update`` from callbacks that tests can call directly.
"""
from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
PROTECTED_COLOUR = "#d62728"


def setup_notebook() -> None:
    """Embed plotly.js in the notebook's output (no CDN), so exported HTML works offline.

    Also spares the kernel jsonschema's RFC 3987 (IRI) format checker: plotly.io imports
    nbformat, whose jsonschema builds that checker's Earley parser at import, 1.2 s of every
    kernel start (a sixth of a cached notebook), for a check no notebook makes. Skipped only
    when nothing imported it yet; jsonschema then leaves IRI formats unchecked in this kernel.
    """
    import sys
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # None in sys.modules: "import" raises ImportError
    import plotly.io as pio
    pio.renderers.default = "notebook"


def show(fig: go.Figure, widget=None, widgets: bool = True):
    """Display ``widget`` when interactive widgets are wanted, else the static figure.

    Static figures keep plotly's hover and zoom in exported HTML; widgets need a live kernel.
    """
    from IPython.display import display
    if widgets and widget is not None:
        display(widget)
    else:
        fig.show()


def png_uri(image: np.ndarray) -> str:
    """A PNG data URI of a uint8 image: far smaller in a figure than a list of pixel values."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def montage(canvases: np.ndarray, columns: int, size: int = 96, pad: int = 2) -> np.ndarray:
    """Tile uint8 canvases (N, H, W, 3) into one image, ``columns`` wide, white gaps."""
    n = len(canvases)
    rows = max(1, int(np.ceil(n / columns)))
    out = np.full((rows * (size + pad) + pad, columns * (size + pad) + pad, 3), 255, np.uint8)
    for i, c in enumerate(canvases):
        r, k = divmod(i, columns)
        tile = np.asarray(Image.fromarray(c).resize((size, size), Image.BILINEAR))
        out[pad + r * (size + pad):pad + r * (size + pad) + size, pad + k * (size + pad):pad + k * (size + pad) + size] = tile
    return out


def identity_grid_figure(canvases: np.ndarray, labels: np.ndarray, names: Sequence[str], per_identity: int = 1,
                         max_identities: int = 40, protected: Sequence[int] = (), columns: int = 10) -> go.Figure:
    """One or more photos of each identity in a grid; protected users' names in red."""
    chosen, titles = [], []
    for label in np.unique(labels)[:max_identities]:
        idx = np.flatnonzero(labels == label)[:per_identity]
        chosen.extend(idx)
        titles.extend([names[label]] * len(idx))
    columns = min(columns, len(chosen))
    size = 96
    img = montage(canvases[chosen], columns, size)
    fig = go.Figure(go.Image(source=png_uri(img), hoverinfo="skip"))
    for i, (title, idx) in enumerate(zip(titles, chosen)):
        r, k = divmod(i, columns)
        colour = PROTECTED_COLOUR if labels[idx] in set(protected) else "black"
        fig.add_annotation(x=2 + k * (size + 2) + size / 2, y=2 + r * (size + 2) + size + 1, text=title[:14],
                           showarrow=False, font=dict(size=9, color=colour), yanchor="top")
    rows = int(np.ceil(len(chosen) / columns))
    fig.update_layout(height=rows * 125 + 40, width=columns * 100 + 40, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(visible=False), yaxis=dict(visible=False), title="Identities in the scraped set")
    return fig


def split_figure(labels: np.ndarray, names: Sequence[str], train: np.ndarray, test: np.ndarray,
                 protected: Sequence[int]) -> go.Figure:
    """Per identity, how many photos the trainer scrapes and how many are probes; protected users marked."""
    ids = np.unique(labels)
    n_train = np.array([np.sum(labels[train] == i) for i in ids])
    n_test = np.array([np.sum(labels[test] == i) for i in ids])
    prot = np.isin(ids, protected)
    xs = [("🔒 " if p else "") + names[i] for i, p in zip(ids, prot)]
    fig = go.Figure([
        go.Bar(x=xs, y=n_train, name="scraped by the trainer (70 %)",
               marker_color=[PROTECTED_COLOUR if p else PALETTE[0] for p in prot],
               hovertemplate="%{x}: %{y} photos scraped<extra></extra>"),
        go.Bar(x=xs, y=n_test, name="later recognised from (30 %)", marker_color=PALETTE[2],
               hovertemplate="%{x}: %{y} probe photos<extra></extra>"),
    ])
    fig.update_layout(barmode="stack", title="The protocol split (red: protected users, whose scraped photos are cloaked)",
                      yaxis_title="photos", height=380, xaxis_tickangle=-45, margin=dict(b=120))
    return fig


def timeline_figure(rows: Sequence[dict], events: Sequence[tuple[float, str]] = ()) -> go.Figure:
    """Extractors placed by year (``rows`` of ``ModelInfo.as_dict()`` plus optional 'available'),
    attack releases as vertical markers (``events`` of (year, label))."""
    fig = go.Figure()
    seen_years: dict[int, int] = {}
    for r in rows:
        level = seen_years.get(r["year"], 0)
        seen_years[r["year"]] = level + 1
        available = r.get("available", r["offline"])
        fig.add_trace(go.Scatter(
            x=[r["year"]], y=[level], mode="markers+text", text=[r["name"]], textposition="top center",
            marker=dict(size=16, symbol="circle" if available else "circle-open",
                        color=PALETTE[0] if r["offline"] else PALETTE[1]),
            hovertext=f"{r['name']} ({r['year']})<br>{r['architecture']}<br>trained on {r['training_data']}"
                      f"<br>{'offline' if r['offline'] else 'needs download'}"
                      f"{'' if available else ' (not available here)'}",
            hoverinfo="text", showlegend=False))
    for year, label in events:
        fig.add_vline(x=year, line_dash="dot", line_color=PROTECTED_COLOUR)
        fig.add_annotation(x=year, y=-0.6, text=label, showarrow=False, font=dict(color=PROTECTED_COLOUR, size=10))
    fig.update_layout(title="The model zoo on a timeline (filled: usable offline here; open: needs a download)",
                      xaxis=dict(title="year", dtick=1), yaxis=dict(visible=False, range=[-1, 4]), height=320)
    return fig


def accuracy_figure(names: Sequence[str], accuracies: Sequence[float], title: str = "Clean 1-NN identification accuracy") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(names), y=list(accuracies), text=[f"{a:.3f}" for a in accuracies],
                           textposition="outside", marker_color=PALETTE[0]))
    fig.update_layout(title=title, yaxis=dict(range=[0, 1.08], title="accuracy"), height=340)
    return fig


# UMAP -------------------------------------------------------------------------------------------

def umap_figure(coords: np.ndarray, labels: np.ndarray, names: Sequence[str], title: str = "",
                hover: Sequence[str] | None = None) -> go.Figure:
    """A scatter of 2-D points, one trace per identity, hovering shows the identity (and ``hover``)."""
    fig = go.Figure()
    for k, label in enumerate(np.unique(labels)):
        idx = np.flatnonzero(labels == label)
        text = [names[label] + (f"<br>{hover[i]}" if hover is not None else "") for i in idx]
        fig.add_trace(go.Scatter(x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=names[label],
                                 marker=dict(size=7, color=PALETTE[k % len(PALETTE)]),
                                 hovertext=text, hoverinfo="text"))
    fig.update_layout(title=title, height=480, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      legend=dict(font=dict(size=9)))
    return fig


class ModelUmapWidget:
    """A dropdown over models and a UMAP of identities under the chosen model.

    ``coords_by_model`` maps a model name to (N, 2) coordinates of the same photos;
    ``select(name)`` is the callback (tests call it directly).
    """

    def __init__(self, coords_by_model: dict[str, np.ndarray], labels: np.ndarray, names: Sequence[str],
                 hover: Sequence[str] | None = None):
        import ipywidgets as w
        self.coords_by_model, self.labels = coords_by_model, labels
        first = next(iter(coords_by_model))
        self.figure = go.FigureWidget(umap_figure(coords_by_model[first], labels, names, f"UMAP under {first}", hover))
        self.dropdown = w.Dropdown(options=list(coords_by_model), value=first, description="model")
        self.dropdown.observe(lambda change: self.select(change["new"]), names="value")
        self.widget = w.VBox([self.dropdown, self.figure])

    def select(self, name: str) -> None:
        coords = self.coords_by_model[name]
        with self.figure.batch_update():
            for trace, label in zip(self.figure.data, np.unique(self.labels)):
                idx = np.flatnonzero(self.labels == label)
                trace.x, trace.y = coords[idx, 0], coords[idx, 1]
            self.figure.layout.title.text = f"UMAP under {name}"


# Notebook 01: clean vs cloaked, the baseline result, cloaks moving in embedding space ---------------

def cloak_comparison_figure(original: np.ndarray, cloaked: np.ndarray, amplify: float = 10.0, title: str = "") -> go.Figure:
    """Original, cloaked and the difference (amplified ``amplify`` times around mid-grey), side by side."""
    from plotly.subplots import make_subplots
    diff = cloaked.astype(np.float32) - original.astype(np.float32)
    shown = np.clip(127.5 + amplify * diff, 0, 255).astype(np.uint8)
    fig = make_subplots(rows=1, cols=3, subplot_titles=("original", "cloaked (what is uploaded)",
                                                        f"difference x{amplify:g}"))
    for k, img in enumerate((original, cloaked, shown), start=1):
        fig.add_trace(go.Image(source=png_uri(img), hoverinfo="skip"), row=1, col=k)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=330, margin=dict(l=10, r=10, t=70, b=10))
    return fig


class CloakViewer:
    """Pick an attack/mode and a photo; see original, cloak and amplified difference with DSSIM and L-inf.

    ``results`` maps a label such as ``"fawkes-v1.0 high"`` to ``(originals, CloakResult)``.
    """

    def __init__(self, results: dict[str, tuple[np.ndarray, object]], amplify: float = 10.0):
        import ipywidgets as w
        self.results, self.amplify = results, amplify
        first = next(iter(results))
        n = len(results[first][0])
        self.choice = w.Dropdown(options=list(results), value=first, description="attack")
        self.index = w.IntSlider(min=0, max=max(0, n - 1), value=0, description="photo")
        self.figure = go.FigureWidget(self.render(first, 0))
        self.choice.observe(lambda c: self.update(), names="value")
        self.index.observe(lambda c: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.choice, self.index]), self.figure])

    def render(self, label: str, i: int) -> go.Figure:
        originals, result = self.results[label]
        i = min(i, len(originals) - 1)
        title = (f"{label}: DSSIM {result.dssim[i]:.4f}, L-inf {result.linf[i] * 255:.0f}/255, "
                 f"feature shift {', '.join(f'{k} {v[i]:.2f}' for k, v in result.shift.items())}")
        return cloak_comparison_figure(originals[i], result.cloaked[i], self.amplify, title)

    def update(self) -> None:
        fresh = self.render(self.choice.value, self.index.value)
        with self.figure.batch_update():
            for trace, new in zip(self.figure.data, fresh.data):
                trace.source = new.source
            self.figure.layout.title.text = fresh.layout.title.text


def protection_figure(rows: Sequence[dict], paper: dict[str, float] | None = None,
                      title: str = "Protection against the attacked model (1-NN)",
                      paper_label: str = "paper's reported protection") -> go.Figure:
    """Per attack: protected users' error (protection rate, Wilson 95 % interval), unprotected and clean error.

    ``rows`` are experiment result rows for one model/classifier per attack; ``paper`` adds the
    paper's reported protection rates as markers (``explainer.paper.markers``), named ``paper_label``.
    """
    attacks_ = [r["attack"] for r in rows]
    prot = [r["protection_rate"] for r in rows]
    lo = [r["protection_rate"] - r["protection_ci"][0] for r in rows]
    hi = [r["protection_ci"][1] - r["protection_rate"] for r in rows]
    fig = go.Figure([
        go.Bar(name="protected users (protection rate)", x=attacks_, y=prot, marker_color=PROTECTED_COLOUR,
               error_y=dict(type="data", array=hi, arrayminus=lo), text=[f"{v:.2f}" for v in prot],
               textposition="outside"),
        go.Bar(name="unprotected users", x=attacks_, y=[r["unprotected_error"] for r in rows], marker_color=PALETTE[0]),
        go.Bar(name="clean (nobody protected)", x=attacks_, y=[r["clean_error"] for r in rows], marker_color=PALETTE[7]),
    ])
    if paper:
        fig.add_trace(go.Scatter(name=paper_label, x=attacks_, y=[paper.get(a) for a in attacks_],
                                 mode="markers", marker=dict(symbol="diamond", size=14, color="black")))
    fig.update_layout(barmode="group", title=title, yaxis=dict(title="error rate", range=[0, 1.15]), height=420)
    return fig


def iterate_umap_figure(base_coords: np.ndarray, base_labels: np.ndarray, names: Sequence[str], user: int,
                        user_test: np.ndarray, cloak_coords: np.ndarray, title: str = "") -> go.Figure:
    """Other users (grey), the protected user's clean test photos (green) and their cloaked
    scraped photos at one iterate (red)."""
    others = base_labels != user
    fig = go.Figure([
        go.Scatter(x=base_coords[others, 0], y=base_coords[others, 1], mode="markers", name="other users",
                   marker=dict(size=6, color="#bbbbbb"), hovertext=[names[l] for l in base_labels[others]],
                   hoverinfo="text"),
        go.Scatter(x=user_test[:, 0], y=user_test[:, 1], mode="markers", name=f"{names[user]}: clean test photos",
                   marker=dict(size=10, color=PALETTE[2], symbol="circle"), hoverinfo="name"),
        go.Scatter(x=cloak_coords[:, 0], y=cloak_coords[:, 1], mode="markers",
                   name=f"{names[user]}: cloaked scraped photos", marker=dict(size=11, color=PROTECTED_COLOUR,
                                                                              symbol="x"), hoverinfo="name"),
    ])
    fig.update_layout(title=title, height=500, xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


class IterateUmapWidget:
    """A selector (attack, evaluating model) and a slider over the attack's steps.

    ``frames[(attack, model)]`` is a dict with ``base`` (N, 2), ``base_labels``, ``user_test``
    (M, 2), ``iterates`` (T, K, 2) and ``steps`` (T,): coordinates in a UMAP fitted once per
    model, the iterates placed with ``transform`` so the map does not jump.
    """

    def __init__(self, frames: dict[tuple[str, str], dict], names: Sequence[str], user: int):
        import ipywidgets as w
        self.frames, self.names, self.user = frames, names, user
        keys = list(frames)
        self.choice = w.Dropdown(options=[(f"{a} / seen by {m}", (a, m)) for a, m in keys], value=keys[0],
                                 description="cloak")
        self.step = w.IntSlider(min=0, max=len(frames[keys[0]]["steps"]) - 1, value=0, description="iterate")
        self.figure = go.FigureWidget(self.render(keys[0], 0))
        self.choice.observe(lambda c: self.select(c["new"]), names="value")
        self.step.observe(lambda c: self.move(c["new"]), names="value")
        self.widget = w.VBox([w.HBox([self.choice, self.step]), self.figure])

    def render(self, key, t: int) -> go.Figure:
        f = self.frames[key]
        return iterate_umap_figure(f["base"], f["base_labels"], self.names, self.user, f["user_test"], f["iterates"][t],
                                   f"{key[0]} cloaks of {self.names[self.user]} under {key[1]}, step {f['steps'][t]}")

    def select(self, key) -> None:
        self.step.max = len(self.frames[key]["steps"]) - 1
        self.move(min(self.step.value, self.step.max), key)

    def move(self, t: int, key=None) -> None:
        key = key or self.choice.value
        fresh = self.render(key, t)
        with self.figure.batch_update():
            for trace, new in zip(self.figure.data, fresh.data):
                trace.x, trace.y = new.x, new.y
                trace.hovertext = new.hovertext
            self.figure.layout.title.text = fresh.layout.title.text


# Notebooks 02 and 03: the adaptive defence and the detector --------------------------------------

def before_after_figure(rows: Sequence[dict], title: str = "Protection before and after the adaptive defence (1-NN)",
                        paper: dict[str, float] | None = None, paper_label: str = "paper's reported protection"
                        ) -> go.Figure:
    """Per attack: protection rate against the original model and against the robust one (with its
    Wilson interval), both models' clean accuracy as markers, and ``paper``'s rates (by attack)
    as black diamonds."""
    attacks_ = [r["attack"] for r in rows]
    after = [r["protection_rate"] for r in rows]
    fig = go.Figure([
        go.Bar(name="protection, original model", x=attacks_, y=[r["protection_rate_before"] for r in rows],
               marker_color=PALETTE[7], text=[f"{r['protection_rate_before']:.2f}" for r in rows], textposition="outside"),
        go.Bar(name="protection, robust model", x=attacks_, y=after, marker_color=PROTECTED_COLOUR,
               error_y=dict(type="data", array=[r["protection_ci"][1] - r["protection_rate"] for r in rows],
                            arrayminus=[r["protection_rate"] - r["protection_ci"][0] for r in rows]),
               text=[f"{v:.2f}" for v in after], textposition="outside"),
        go.Scatter(name="clean accuracy, original", x=attacks_, y=[r["clean_accuracy_before"] for r in rows],
                   mode="markers", marker=dict(symbol="line-ew-open", size=30, color="black")),
        go.Scatter(name="clean accuracy, robust", x=attacks_, y=[r["clean_accuracy"] for r in rows],
                   mode="markers", marker=dict(symbol="diamond", size=11, color=PALETTE[2])),
    ])
    if paper:
        fig.add_trace(go.Scatter(name=paper_label, x=attacks_, y=[paper.get(a) for a in attacks_], mode="markers",
                                 marker=dict(symbol="diamond", size=13, color="black")))
    fig.update_layout(barmode="group", title=title, yaxis=dict(title="rate", range=[0, 1.15]), height=420)
    return fig


def roc_figure(scores: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "Detector ROC on held-out identities"
               ) -> go.Figure:
    """ROC curves, one per attack, from (scores of clean photos, scores of cloaked photos)."""
    from sklearn.metrics import roc_auc_score, roc_curve
    fig = go.Figure()
    for k, (name, (clean, cloaked)) in enumerate(scores.items()):
        y = np.concatenate([np.zeros(len(clean)), np.ones(len(cloaked))])
        s = np.concatenate([clean, cloaked])
        fpr, tpr, _ = roc_curve(y, s)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUC {roc_auc_score(y, s):.3f})",
                                 line=dict(color=PALETTE[k % len(PALETTE)])))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="chance"))
    fig.update_layout(title=title, xaxis=dict(title="false positive rate (clean flagged)"),
                      yaxis=dict(title="true positive rate (cloaks caught)"), height=420)
    return fig


def cross_attack_figure(rows: Sequence[dict], metric: str = "recall",
                        title: str = "Detector trained on one attack, tested on each") -> go.Figure:
    """Heatmap of ``metric`` by (trained on, tested on), from rows with one-attack ``trained_on``."""
    rows = [r for r in rows if len(r["trained_on"]) == 1]
    trained = list(dict.fromkeys(r["trained_on"][0] for r in rows))
    tested = list(dict.fromkeys(r["attack"] for r in rows))
    z = np.full((len(trained), len(tested)), np.nan)
    for r in rows:
        z[trained.index(r["trained_on"][0]), tested.index(r["attack"])] = r[metric]
    fig = go.Figure(go.Heatmap(z=z, x=tested, y=trained, zmin=0, zmax=1, colorscale="RdYlGn",
                               text=[[f"{v:.2f}" for v in row] for row in z], texttemplate="%{text}",
                               colorbar=dict(title=metric)))
    fig.update_layout(title=title, xaxis=dict(title="tested on"), yaxis=dict(title="trained on"), height=380)
    return fig


# Notebooks 04 and 05: time travel and hybrids ----------------------------------------------------

def protection_heatmap_figure(rows: Sequence[dict], title: str = "Protection rate of old cloaks against every extractor (1-NN)"
                              ) -> go.Figure:
    """Attacks (rows) x extractors in publication order (columns): protection rate, with each
    extractor's clean error as the last row. Cloaks made against a model are marked "attacked";
    extractors whose weights are not here are grey "needs download" columns, never dropped."""
    model_names = list(dict.fromkeys(r["model"] for r in sorted(rows, key=lambda r: (r["model_year"], r["model"]))))
    attack_names = list(dict.fromkeys(r["attack"] for r in rows))
    ys = attack_names + ["clean error (no cloaks)"]
    z = np.full((len(ys), len(model_names)), np.nan)
    text = [["" for _ in model_names] for _ in ys]
    for r in rows:
        j, i = model_names.index(r["model"]), attack_names.index(r["attack"])
        if not r["available"]:
            text[i][j] = text[-1][j] = "needs<br>download"
            continue
        z[i, j] = r["protection_rate"]
        text[i][j] = f"{r['protection_rate']:.2f}" + ("<br>attacked" if r["attacked"] else "")
        z[-1, j] = r["clean_error"]
        text[-1][j] = f"{r['clean_error']:.2f}"
    years = {r["model"]: r["model_year"] for r in rows}
    x = [f"{m}<br>({years[m]})" for m in model_names]
    fig = go.Figure(go.Heatmap(z=z, x=x, y=ys, zmin=0, zmax=1, colorscale="Reds", text=text, texttemplate="%{text}",
                               colorbar=dict(title="rate"), hoverongaps=False))
    unavailable = [k for k, m in enumerate(model_names) if not any(r["available"] for r in rows if r["model"] == m)]
    for k in unavailable:
        fig.add_vrect(x0=k - 0.5, x1=k + 0.5, fillcolor="lightgrey", opacity=0.5, line_width=0)
    fig.update_layout(title=title, height=360, yaxis=dict(autorange="reversed"), xaxis=dict(tickfont=dict(size=10)))
    return fig


def hybrid_figure(curves, tau: float | None = None, title: str = "Accuracy vs protection as the threshold moves"
                  ) -> go.Figure:
    """Clean accuracy against protection rate of the thresholded hybrid for every tau (a
    ``defences.HybridCurves``), with both single models, Top2 and the chosen ``tau`` as markers."""
    fig = go.Figure(go.Scatter(x=curves.protection_rate, y=curves.clean_accuracy, mode="lines+markers",
                               marker=dict(size=4), name="threshold hybrid (each tau)",
                               hovertext=[f"tau {t:.2f}" for t in curves.taus], hoverinfo="text+x+y"))
    for k, (role, symbol) in enumerate((("accurate", "square"), ("robust", "diamond"), ("top2", "star"))):
        r = curves.single[role]
        fig.add_trace(go.Scatter(x=[r["protection_rate"]], y=[r["clean_accuracy"]], mode="markers", name=role,
                                 marker=dict(size=13, symbol=symbol, color=PALETTE[k + 1])))
    i = 0 if tau is None else int(np.argmin(np.abs(curves.taus - tau)))
    fig.add_trace(go.Scatter(x=[curves.protection_rate[i]], y=[curves.clean_accuracy[i]], mode="markers",
                             name="current tau", marker=dict(size=16, color=PROTECTED_COLOUR, symbol="circle-open",
                                                            line=dict(width=3))))
    fig.update_layout(title=f"{title} (tau = {curves.taus[i]:.2f})", height=440,
                      xaxis=dict(title="protection rate (lower: the trainer wins)", range=[-0.05, 1.05]),
                      yaxis=dict(title="clean accuracy"))
    return fig


class ThresholdWidget:
    """A tau slider over a ``hybrid_figure``: the marker and the title follow it (``move(i)``)."""

    def __init__(self, curves, tau: float | None = None):
        import ipywidgets as w
        self.curves = curves
        start = 0 if tau is None else int(np.argmin(np.abs(curves.taus - tau)))
        self.figure = go.FigureWidget(hybrid_figure(curves, curves.taus[start]))
        self.slider = w.IntSlider(value=start, min=0, max=len(curves.taus) - 1, description="tau index",
                                  continuous_update=True, readout=False)
        self.slider.observe(lambda change: self.move(change["new"]), names="value")
        self.widget = w.VBox([self.slider, self.figure])

    def move(self, i: int) -> None:
        c = self.curves
        with self.figure.batch_update():
            marker = self.figure.data[-1]
            marker.x, marker.y = [c.protection_rate[i]], [c.clean_accuracy[i]]
            self.figure.layout.title.text = (f"tau = {c.taus[i]:.2f}: clean accuracy {c.clean_accuracy[i]:.3f}, "
                                             f"protection {c.protection_rate[i]:.3f}")


def who_is_this_figure(answers: Sequence[dict], title: str = "Who is this? Each model asked about clean photos of you"
                       ) -> go.Figure:
    """Per model of the timeline: how often it recognises you when your posted photos are clean
    vs cloaked. Models that need a download appear as grey, empty columns."""
    answers = sorted(answers, key=lambda r: (r["model_year"], r["model"]))
    x = [f"{r['model']}<br>({r['model_year']}){'<br>attacked' if r['attacked'] else ''}" for r in answers]
    fig = go.Figure()
    for key, label, colour in (("recognised_clean", "your posted photos clean", PALETTE[2]),
                               ("recognised_cloaked", "your posted photos cloaked", PROTECTED_COLOUR)):
        y = [r.get(key) if r["available"] else None for r in answers]
        text = [f"{v:.0%}" if v is not None else "needs<br>download" for v in y]
        hover = [f"answer: {r.get('answer', '-')}" for r in answers]
        fig.add_trace(go.Bar(x=x, y=[v if v is not None else 0 for v in y], name=label, marker_color=colour,
                             text=text, textposition="outside", hovertext=hover))
    for k, r in enumerate(answers):
        if not r["available"]:
            fig.add_vrect(x0=k - 0.5, x1=k + 0.5, fillcolor="lightgrey", opacity=0.5, line_width=0)
    fig.update_layout(title=title, barmode="group", height=400, yaxis=dict(title="recognised as you", range=[0, 1.15],
                                                                           tickformat=".0%"))
    return fig


class YourPhotoWidget:
    """Upload photos (or use the sample faces), pick an attack, cloak, and see what each model answers.

    ``compute(files, attack, mode, face_choice)`` does the work (``files`` is a list of
    ``(name, bytes)``, empty for the sample) and returns an ``experiments.YourPhotoRun``.
    ``submit`` is what the button calls: every problem becomes one line in ``messages``,
    never a traceback, and the figures are replaced in place.
    """

    def __init__(self, compute, attack_modes: dict[str, list[str]], attack: str = "fawkes-v1.0",
                 mode: str | None = None):
        import ipywidgets as w
        self.compute, self.attack_modes = compute, attack_modes
        self.upload = w.FileUpload(accept="image/*", multiple=True, description="your photos")
        self.attack = w.Dropdown(options=list(attack_modes), value=attack, description="attack")
        self.mode = w.Dropdown(options=attack_modes[attack], value=mode or attack_modes[attack][-1], description="mode")
        self.face = w.BoundedIntText(value=1, min=1, max=20, description="face no.",
                                     tooltip="with several faces in a photo: 1 = the largest")
        self.button = w.Button(description="Cloak and ask the models", button_style="primary")
        self.messages = w.HTML()
        self.before_after = go.FigureWidget()
        self.answers = go.FigureWidget()
        self.attack.observe(lambda c: self._modes(c["new"]), names="value")
        self.button.on_click(lambda _: self.submit(self.uploaded()))
        self.widget = w.VBox([w.HBox([self.upload, self.attack, self.mode, self.face]), self.button, self.messages,
                              self.before_after, self.answers])
        self.run = None

    def _modes(self, attack: str) -> None:
        self.mode.options = self.attack_modes[attack]
        self.mode.value = self.attack_modes[attack][-1]

    def uploaded(self) -> list[tuple[str, bytes]]:
        return [(f["name"], bytes(f["content"])) for f in self.upload.value]

    def submit(self, files: list[tuple[str, bytes]]) -> list[str]:
        """Run ``compute`` on ``files`` and show the result; returns the lines shown."""
        import html

        from .data import PhotoError
        lines = ["working..."]
        self.messages.value = "working..."
        try:
            run = self.compute(files, self.attack.value, self.mode.value, self.face.value - 1)
        except PhotoError as exc:
            lines = [f"Cannot use these photos: {exc}"]
        except Exception as exc:  # a widget must keep the notebook alive: one line, not a traceback wall
            lines = [f"Something went wrong ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"]
        else:
            self.run = run
            lines = run.messages()
            r = run.result
            lines.append(f"{r.attack} {r.mode} against {', '.join(r.models)}: DSSIM {r.dssim.mean():.4f}, "
                         f"L-inf {r.linf.max() * 255:.0f}/255")
            self._replace(self.before_after, cloak_comparison_figure(run.enrolled[0], run.cloaked[0],
                                                                     title="your posted photo"))
            self._replace(self.answers, who_is_this_figure(run.answers))
        self.messages.value = "<br>".join(html.escape(line) for line in lines)
        return lines

    @staticmethod
    def _replace(target: go.FigureWidget, fig: go.Figure) -> None:
        with target.batch_update():
            target.data = []
            target.add_traces(list(fig.data))
            target.layout = fig.layout


# Notebook 00: the scenario; 04: switching; 07: the arms race ------------------------------------

def scenario_figure() -> go.Figure:
    """The paper's scenario as a picture: the users (the *attack*) cloak and upload; the trainer
    (the *defence*) scrapes, trains and later meets a clean photo; time runs left to right."""
    steps = [(0.08, 0.72, "You cloak your photos<br>(Fawkes, LowKey)", PROTECTED_COLOUR),
             (0.33, 0.72, "...and post them<br>online", PROTECTED_COLOUR),
             (0.58, 0.28, "The trainer scrapes<br>everyone's photos", PALETTE[0]),
             (0.83, 0.28, "...trains a face model,<br>now or years later", PALETTE[0]),
             (0.83, 0.72, "A clean photo of you<br>(a street camera): who is it?", PALETTE[2])]
    fig = go.Figure()
    for x, y, text, colour in steps:
        fig.add_annotation(x=x, y=y, text=text, showarrow=False, font=dict(size=13, color="white"),
                           bgcolor=colour, borderpad=8, xref="x", yref="y")
    for (x0, y0, *_), (x1, y1, *_) in zip(steps, steps[1:]):
        fig.add_annotation(x=x1 - 0.09 if y0 == y1 else x1, y=y1 if y0 == y1 else y1 + (0.1 if y1 < y0 else -0.1),
                           ax=x0 + 0.09 if y0 == y1 else x0, ay=y0 if y0 == y1 else y0 + (-0.1 if y1 < y0 else 0.1),
                           xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=3, arrowwidth=2,
                           arrowcolor="grey", text="")
    fig.add_annotation(x=0.2, y=0.97, text="<b>the users: the paper's attack</b> (they move first, once)",
                       showarrow=False, font=dict(color=PROTECTED_COLOUR))
    fig.add_annotation(x=0.7, y=0.03, text="<b>the trainer: the paper's defence</b> (it moves second, any time)",
                       showarrow=False, font=dict(color=PALETTE[0]))
    fig.add_annotation(x=0.5, y=0.5, text="time →", showarrow=False, font=dict(color="grey", size=12))
    fig.update_layout(xaxis=dict(visible=False, range=[-0.05, 1.02]), yaxis=dict(visible=False, range=[0, 1]),
                      height=330, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white",
                      title="Who does what: users cloak and post, the trainer scrapes and recognises")
    return fig


def switching_figure(rows: Sequence[dict], title: str = "Switching attacks: the new cloak alone vs old and new together (1-NN)"
                     ) -> go.Figure:
    """One panel group per (old -> new) switch: for each judge, the protection with the new cloaks
    alone beside the protection once the old cloaks are scraped too; each judge's clean error as a
    line marker (a protection near it means no protection)."""
    switches = list(dict.fromkeys((r["old_attack"], r["new_attack"]) for r in rows))
    judges = list(dict.fromkeys(r["model"] for r in rows))
    x = [[f"{o} → {n}" for o, n in switches for _ in judges], [j for _ in switches for j in judges]]

    def value(old, new, judge, uploads, key="protection_rate"):
        found = [r[key] for r in rows if (r["old_attack"], r["new_attack"], r["model"], r["uploads"]) ==
                 (old, new, judge, uploads)]
        return found[0] if found else None
    fig = go.Figure()
    for uploads, colour, name in (("new", PALETTE[1], "new cloak alone (what the user hopes)"),
                                  ("old+new", PROTECTED_COLOUR, "old and new cloaks both scraped")):
        y = [value(o, n, j, uploads) for o, n in switches for j in judges]
        fig.add_trace(go.Bar(name=name, x=x, y=y, marker_color=colour,
                             text=[None if v is None else f"{v:.2f}" for v in y], textposition="outside"))
    fig.add_trace(go.Scatter(name="clean error of the judge", x=x, mode="markers",
                             y=[value(o, n, j, "new", "clean_error") for o, n in switches for j in judges],
                             marker=dict(symbol="line-ew-open", size=24, color="black")))
    fig.update_layout(barmode="group", title=title, yaxis=dict(title="protection rate", range=[0, 1.15]), height=460,
                      xaxis=dict(tickfont=dict(size=10)))
    return fig


def arms_race_figure(rows: Sequence[dict], title: str = "The arms race in one picture: protection left after each move of the trainer"
                     ) -> go.Figure:
    """Per move of the trainer (x) and attack (colour): this run's 1-NN protection rate as bars and
    the paper's figure for the same move as black diamonds, where its sources give one."""
    moves = list(dict.fromkeys(r["move"] for r in rows))
    attacks_ = list(dict.fromkeys(r["attack"] for r in rows))
    fig = go.Figure()
    for k, attack in enumerate(attacks_):
        mine = {r["move"]: r for r in rows if r["attack"] == attack}
        y = [mine[m]["protection_rate"] if m in mine else None for m in moves]
        fig.add_trace(go.Bar(name=f"{attack} (this run)", x=moves, y=y, marker_color=PALETTE[k % len(PALETTE)],
                             text=[None if v is None else f"{v:.2f}" for v in y], textposition="outside",
                             hovertext=[mine[m]["model"] if m in mine else "" for m in moves], offsetgroup=str(k)))
        paper_y = [mine[m]["paper"] if m in mine else None for m in moves]
        if any(v is not None for v in paper_y):
            fig.add_trace(go.Scatter(name=f"{attack} (paper)", x=moves, y=paper_y, mode="markers", offsetgroup=str(k),
                                     marker=dict(symbol="diamond", size=12, color="black",
                                                 line=dict(color=PALETTE[k % len(PALETTE)], width=2)),
                                     hovertext=[mine[m]["paper_source"] if m in mine else "" for m in moves]))
    fig.update_layout(barmode="group", scattermode="group", title=title, height=460,
                      yaxis=dict(title="protection rate (1-NN)", range=[0, 1.15]))
    return fig
