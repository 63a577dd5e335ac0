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
    """Embed plotly.js in the notebook's output (no CDN), so exported HTML works offline."""
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

def fit_umap(embeddings: np.ndarray, seed: int = 0, n_neighbors: int = 15):
    """A fitted 2-D UMAP of unit embeddings (cosine metric); ``.embedding_`` holds the coordinates.

    Later points (cloak iterates) are placed with ``reducer.transform`` so the map does not jump.
    """
    import umap
    n_neighbors = max(2, min(n_neighbors, len(embeddings) - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=0.2, metric="cosine",
                        random_state=seed, n_jobs=1, init="spectral" if len(embeddings) > n_neighbors + 2 else "random")
    reducer.fit(embeddings)
    return reducer


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
