"""Figures for the notebooks: pure functions that take arrays and return plotly figures.

The widgets that wire them to controls live in ``explainer.ui``.
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
    """Embed plotly.js in the notebook's output (no CDN), so exported HTML works offline, and
    show tables' text in full.

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
    import pandas as pd
    pd.set_option("display.max_colwidth", None)  # a settings row is a sentence: never cut it to "..."


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


def animation_figure(figures: Sequence[go.Figure], labels: Sequence[str], prefix: str = "",
                     duration_ms: int = 600, start: int = -1) -> go.Figure:
    """One figure that plays ``figures`` as frames (same traces, moving data), with a play button
    and a slider labelled ``labels``: it moves in an exported page, without a kernel. It opens on
    frame ``start`` (the last: where things ended up); play runs from the first frame."""
    start = start % len(figures)
    frames = [go.Frame(data=list(f.data), name=str(label), layout=go.Layout(title_text=f.layout.title.text))
              for f, label in zip(figures, labels)]
    fig = go.Figure(data=list(figures[start].data), layout=figures[start].layout, frames=frames)
    play = {"frame": {"duration": duration_ms, "redraw": True}, "fromcurrent": False, "transition": {"duration": 0}}
    fig.update_layout(
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0.0, "y": -0.12, "xanchor": "left",
                      "buttons": [{"label": "▶ play", "method": "animate", "args": [None, play]},
                                  {"label": "❚❚ pause", "method": "animate",
                                   "args": [[None], {"frame": {"duration": 0}, "mode": "immediate"}]}]}],
        sliders=[{"x": 0.18, "len": 0.8, "y": -0.05, "currentvalue": {"prefix": prefix}, "active": start,
                  "steps": [{"label": str(label), "method": "animate",
                             "args": [[str(label)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                            for label in labels]}])
    return fig


def dropdown_figure(figures: dict[str, go.Figure], label: str = "", start: str | None = None) -> go.Figure:
    """One figure with a dropdown menu over ``figures`` (same traces, other data): every choice
    one click away in an exported page, without a kernel. It opens on ``start`` (the first)."""
    names = list(figures)
    start = start if start in figures else names[0]
    fig = go.Figure(figures[start])
    buttons = [{"label": name, "method": "update",
                "args": [{"x": [t.x for t in f.data], "y": [t.y for t in f.data],
                          "hovertext": [t.hovertext for t in f.data]}, {"title.text": f.layout.title.text}]}
               for name, f in figures.items()]
    fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.12, "yanchor": "top",
                                    "showactive": True, "active": names.index(start)}],
                      annotations=[*fig.layout.annotations, {"text": label, "showarrow": False, "x": 1.0, "y": 1.17,
                                                              "xref": "paper", "yref": "paper", "xanchor": "right"}]
                      if label else fig.layout.annotations)
    return fig
