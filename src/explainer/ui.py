"""The thin widget layer: ipywidgets controls wired to the figures of ``explainer.viz``.

Each widget holds a ``go.FigureWidget`` and updates it in ``batch_update`` from callbacks that
tests call directly. ``show(widgets)`` displays the live widget in a kernel, or, for headless
runs and exported HTML, a static figure of the widget's current state (plotly keeps hover and
zoom in the page).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from .data import PhotoError
from .viz import (animation_figure, cloak_comparison_figure, dropdown_figure, hybrid_figure, iterate_umap_figure,
                  umap_figure, who_is_this_figure)


class Widget:
    """What every widget shares: ``widget`` (the ipywidgets box), ``figure`` (its FigureWidget)."""

    widget = None
    figure = None

    def static(self):
        """The figure as it stands now, without a kernel (``None``: nothing to show headless)."""
        return go.Figure(self.figure) if self.figure is not None else None

    def show(self, widgets: bool = True) -> None:
        """Display the live widget (``widgets``) or its static figure."""
        from IPython.display import display
        if widgets:
            display(self.widget)
            return
        fig = self.static()
        if fig is None:
            print("Headless run: this widget needs a live kernel (JupyterLab).")
        else:
            fig.show()


class ModelUmapWidget(Widget):
    """A dropdown over models and a UMAP of identities under the chosen model.

    ``coords_by_model`` maps a model name to (N, 2) coordinates of the same photos;
    ``select(name)`` is the callback (tests call it directly).
    """

    def __init__(self, coords_by_model: dict[str, np.ndarray], labels: np.ndarray, names: Sequence[str],
                 hover: Sequence[str] | None = None, start: str | None = None):
        import ipywidgets as w
        self.coords_by_model, self.labels = coords_by_model, labels
        first = start or next(iter(coords_by_model))
        self.figure = go.FigureWidget(umap_figure(coords_by_model[first], labels, names, f"UMAP under {first}", hover))
        self.dropdown = w.Dropdown(options=list(coords_by_model), value=first, description="model")
        self.dropdown.observe(lambda change: self.select(change["new"]), names="value")
        self.widget = w.VBox([self.dropdown, self.figure])

    def render(self, name: str) -> go.Figure:
        fig = go.Figure(self.figure)
        coords = self.coords_by_model[name]
        for trace, label in zip(fig.data, np.unique(self.labels)):
            idx = np.flatnonzero(self.labels == label)
            trace.x, trace.y = coords[idx, 0], coords[idx, 1]
        fig.layout.title.text = f"UMAP under {name}"
        return fig

    def static(self) -> go.Figure:
        """Every model one click away: a plotly dropdown menu in place of the widget's."""
        return dropdown_figure({name: self.render(name) for name in self.coords_by_model}, "model",
                               self.dropdown.value)

    def select(self, name: str) -> None:
        fresh = self.render(name)
        with self.figure.batch_update():
            for trace, new in zip(self.figure.data, fresh.data):
                trace.x, trace.y = new.x, new.y
            self.figure.layout.title.text = fresh.layout.title.text


class CloakViewer(Widget):
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


class IterateUmapWidget(Widget):
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

    def static(self) -> go.Figure:
        """The cloak at work without a kernel: the chosen cloak's walk as a plotly animation, one
        frame per recorded step, with a play button and a step slider."""
        key = self.choice.value
        steps = self.frames[key]["steps"]
        return animation_figure([self.render(key, t) for t in range(len(steps))], [int(s) for s in steps], "step ")

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


class ThresholdWidget(Widget):
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


class YourPhotoWidget(Widget):
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

    def static(self):
        return None  # uploading needs a kernel

    def _modes(self, attack: str) -> None:
        self.mode.options = self.attack_modes[attack]
        self.mode.value = self.attack_modes[attack][-1]

    def uploaded(self) -> list[tuple[str, bytes]]:
        return [(f["name"], bytes(f["content"])) for f in self.upload.value]

    def submit(self, files: list[tuple[str, bytes]]) -> list[str]:
        """Run ``compute`` on ``files`` and show the result; returns the lines shown."""
        import html

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
