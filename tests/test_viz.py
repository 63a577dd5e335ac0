"""Figures are pure functions; widgets are driven through their callbacks, as a teacher would."""
import numpy as np
import plotly.graph_objects as go

from explainer import viz
from explainer.attacks import CloakResult


def test_umap_widget_dropdown_moves_the_points():
    labels = np.repeat([0, 1], 5)
    coords = {"a": np.zeros((10, 2)), "b": np.arange(20, dtype=float).reshape(10, 2)}
    w = viz.ModelUmapWidget(coords, labels, ["x", "y"])
    assert np.allclose(w.figure.data[0].x, 0)
    w.dropdown.value = "b"  # what a click does
    assert np.allclose(w.figure.data[1].x, coords["b"][5:, 0])
    assert "b" in w.figure.layout.title.text


def test_iterate_widget_slider_moves_the_cloaks():
    frames = {("fawkes", "m"): {"base": np.zeros((6, 2)), "base_labels": np.array([1, 1, 2, 2, 0, 0]),
                                "user_test": np.ones((2, 2)), "iterates": np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2),
                                "steps": np.array([0, 5, 10])}}
    w = viz.IterateUmapWidget(frames, ["u", "v", "w"], user=0)
    assert np.allclose(w.figure.data[2].x, [0, 2])
    w.step.value = 2
    assert np.allclose(w.figure.data[2].x, [8, 10])
    assert "step 10" in w.figure.layout.title.text
    assert w.step.max == 2


def test_cloak_viewer_switches_attack_and_photo():
    originals = np.zeros((2, 8, 8, 3), np.uint8)

    def result(value):
        cloaked = np.full((2, 8, 8, 3), value, np.uint8)
        return CloakResult("a", "m", ("x",), cloaked, np.array([0.1, 0.2]), np.array([value / 255] * 2),
                           {"x": np.array([0.5, 0.6])})

    v = viz.CloakViewer({"a low": (originals, result(3)), "b high": (originals, result(9))})
    assert "L-inf 3/255" in v.figure.layout.title.text
    v.choice.value = "b high"
    assert "L-inf 9/255" in v.figure.layout.title.text
    v.index.value = 1
    assert "DSSIM 0.2000" in v.figure.layout.title.text


def test_figures_are_plotly():
    labels = np.repeat([0, 1, 2], 2)
    canvases = np.zeros((6, 16, 16, 3), np.uint8)
    assert isinstance(viz.identity_grid_figure(canvases, labels, ["a", "b", "c"], protected=[1]), go.Figure)
    fig = viz.split_figure(labels, ["a", "b", "c"], np.array([0, 2, 4]), np.array([1, 3, 5]), [1])
    assert len(fig.data) == 2
    rows = [{"attack": "fawkes-v1.0", "protection_rate": 0.9, "protection_ci": [0.7, 0.97],
             "unprotected_error": 0.02, "clean_error": 0.01}]
    fig = viz.protection_figure(rows, {"fawkes-v1.0": 0.97})
    assert fig.data[0].y[0] == 0.9 and fig.data[-1].y[0] == 0.97
