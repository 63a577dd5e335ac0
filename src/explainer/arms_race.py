"""The story's own pictures: who moves when (the scenario), the trainer's figure on people it was
never tuned with, switching attacks, and the arms race in one picture, this run beside the paper."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from .protocol import OUTSIDE_USERS
from .viz import PALETTE, PROTECTED_COLOUR, animation_figure


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


def time_travel_figures(rows: Sequence[dict]) -> tuple[list[go.Figure], list[str]]:
    """One bar chart per available extractor, in publication order: the old cloaks' protection
    rate per attack under that year's model, its clean error as a dashed line (a rate near it
    means the cloak does nothing) and a star on the attacks the model was attacked by."""
    models = sorted({(r["model_year"], r["model"]) for r in rows if r["available"]})
    attacks = list(dict.fromkeys(r["attack"] for r in rows))
    figures, labels = [], []
    for year, model in models:
        mine = {r["attack"]: r for r in rows if r["model"] == model}
        rates = [mine[a]["protection_rate"] for a in attacks]
        clean = next(iter(mine.values()))["clean_error"]
        fig = go.Figure([
            go.Bar(x=attacks, y=rates, marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(attacks))],
                   text=[f"{v:.2f}{' *' if mine[a]['attacked'] else ''}" for a, v in zip(attacks, rates)],
                   textposition="outside", name="protection"),
            go.Scatter(x=attacks, y=[clean] * len(attacks), mode="lines", line={"dash": "dash", "color": "black"},
                       name="clean error (no protection)")])
        fig.update_layout(title=f"{year}: the old cloaks against {model} (* the model they were made against)",
                          yaxis={"range": [0, 1.15], "title": "protection rate (1-NN)"}, height=420,
                          legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"})
        figures.append(fig)
        labels.append(f"{year} {model}")
    return figures, labels


def time_travel_animation(rows: Sequence[dict]) -> go.Figure:
    """The trainer waits: a year slider (and a play button) over the extractors, each year's
    protection of the same old cloaks. Plays in an exported page without a kernel."""
    figures, labels = time_travel_figures(rows)
    return animation_figure(figures, labels, "model: ", duration_ms=1200, start=0)


def adaptive_epoch_figures(frames: dict) -> tuple[list[go.Figure], list[str]]:
    """One map per epoch of ``experiments.adaptive_epochs``: other people (grey), the user's clean
    photos (green) and each attack's cloaks of them (one colour per attack)."""
    coords, parts = frames["coords"], frames["parts"]
    attacks = [k for k in parts if k not in ("others", "user clean", "other labels")]
    figures, labels = [], []
    for epoch, xy in enumerate(coords):
        traces = [go.Scatter(x=xy[parts["others"], 0], y=xy[parts["others"], 1], mode="markers", name="other people",
                             marker={"size": 6, "color": "#bbbbbb"}, hovertext=frames["other names"],
                             hoverinfo="text"),
                  go.Scatter(x=xy[parts["user clean"], 0], y=xy[parts["user clean"], 1], mode="markers",
                             name=f"{frames['user']}: clean photos", marker={"size": 10, "color": PALETTE[2]})]
        traces += [go.Scatter(x=xy[parts[a], 0], y=xy[parts[a], 1], mode="markers", name=f"{frames['user']}: {a} cloaks",
                              marker={"size": 10, "symbol": "x", "color": PALETTE[(3 + i) % len(PALETTE)]})
                   for i, a in enumerate(attacks)]
        fig = go.Figure(traces)
        when = "before training (the original model)" if epoch == 0 else f"after epoch {epoch}"
        fig.update_layout(title=f"The trainer adapting: {frames['model']}, {when}", height=520,
                          xaxis={"visible": False}, yaxis={"visible": False})
        figures.append(fig)
        labels.append(str(epoch))
    return figures, labels


def adaptive_animation(frames: dict) -> go.Figure:
    """The cloaks walking back to their owner as the trainer's model learns: a play button and an
    epoch slider, without a kernel. Opens before training."""
    figures, labels = adaptive_epoch_figures(frames)
    return animation_figure(figures, labels, "epoch ", duration_ms=900, start=0)


def users_compared_figure(rows: Sequence[dict], recipe: str = "align", classifier: str = "1nn") -> go.Figure:
    """Per attack, protection (Wilson interval) under the original model and the ``recipe``'s
    selected one, on the setting's protected users and, hatched, on people outside the setting
    (``AdaptiveRun.users_compared``); each group's clean accuracy in its legend entry."""
    fig = go.Figure()
    for users, r_ in dict.fromkeys((r["users"], r["recipe"]) for r in rows if r["recipe"] in (None, recipe)):
        mine = [r for r in rows if (r["users"], r["recipe"], r["classifier"]) == (users, r_, classifier)]
        fig.add_trace(go.Bar(
            name=f"{'original' if r_ is None else f'robust ({r_})'}, {users} (clean accuracy "
                 f"{mine[0]['clean_accuracy']:.3f})", x=[r["attack"] for r in mine], y=[r["protection_rate"] for r in mine],
            text=[f"{r['protection_rate']:.2f}" for r in mine], textposition="outside",
            marker=dict(color=PALETTE[7] if r_ is None else PROTECTED_COLOUR, pattern_shape="/" if users == OUTSIDE_USERS else ""),
            error_y=dict(type="data", array=[r["protection_ci"][1] - r["protection_rate"] for r in mine],
                         arrayminus=[r["protection_rate"] - r["protection_ci"][0] for r in mine])))
    fig.update_layout(barmode="group", title=f"Protection left on the setting's protected users and on people outside "
                      f"it ({classifier})", yaxis=dict(title="protection rate", range=[0, 1.15]), height=440,
                      legend=dict(orientation="h", y=-0.2))
    return fig
