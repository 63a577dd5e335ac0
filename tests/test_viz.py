"""Figures are pure functions; widgets are driven through their callbacks, as a teacher would."""
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from explainer import maps, ui, viz
from explainer.attacks import CloakResult


def test_umap_widget_dropdown_moves_the_points():
    labels = np.repeat([0, 1], 5)
    coords = {"a": np.zeros((10, 2)), "b": np.arange(20, dtype=float).reshape(10, 2)}
    w = ui.ModelUmapWidget(coords, labels, ["x", "y"])
    assert np.allclose(w.figure.data[0].x, 0)
    w.dropdown.value = "b"  # what a click does
    assert np.allclose(w.figure.data[1].x, coords["b"][5:, 0])
    assert "b" in w.figure.layout.title.text


def test_iterate_widget_slider_moves_the_cloaks():
    frames = {("fawkes", "m"): {"base": np.zeros((6, 2)), "base_labels": np.array([1, 1, 2, 2, 0, 0]),
                                "user_test": np.ones((2, 2)), "iterates": np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2),
                                "steps": np.array([0, 5, 10])}}
    w = ui.IterateUmapWidget(frames, ["u", "v", "w"], user=0)
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

    v = ui.CloakViewer({"a low": (originals, result(3)), "b high": (originals, result(9))})
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


def test_threshold_widget_slider_moves_the_marker():
    from explainer.defences import HybridCurves
    single = {k: {"clean_accuracy": 0.9, "protection_rate": 0.5} for k in ("accurate", "robust", "top2")}
    curves = HybridCurves(np.array([0.0, 0.5, 1.0]), np.array([0.95, 0.99, 1.0]), np.array([0.05, 0.1, 0.9]), single, 0.1)
    w = ui.ThresholdWidget(curves, tau=0.5)
    assert w.slider.value == 1 and list(w.figure.data[-1].x) == [0.1]
    w.slider.value = 2
    assert list(w.figure.data[-1].x) == [0.9] and list(w.figure.data[-1].y) == [1.0]
    assert "tau = 1.00" in w.figure.layout.title.text


def test_heatmap_keeps_models_that_need_a_download():
    rows = [{"attack": "lowkey", "model": "facenet-keras", "model_year": 2017, "available": True, "attacked": True,
             "protection_rate": 0.9, "clean_error": 0.01},
            {"attack": "lowkey", "model": "clip", "model_year": 2021, "available": False, "attacked": False,
             "needs": "download"}]
    fig = viz.protection_heatmap_figure(rows)
    heat = fig.data[0]
    assert len(heat.x) == 2 and "clip" in heat.x[1]
    assert heat.text[0][1] == "needs<br>download" and "attacked" in heat.text[0][0]
    assert heat.z[1][0] == 0.01  # clean-error row


def test_adaptive_and_detection_figures():
    rows = [{"attack": "lowkey", "protection_rate": 0.1, "protection_ci": [0.05, 0.2], "protection_rate_before": 1.0,
             "clean_accuracy": 0.98, "clean_accuracy_before": 0.99}]
    fig = viz.before_after_figure(rows)
    assert fig.data[0].y[0] == 1.0 and fig.data[1].y[0] == 0.1
    roc = viz.roc_figure({"lowkey": (np.array([0.1, 0.2]), np.array([0.8, 0.9]))})
    assert "AUC 1.000" in roc.data[0].name
    cross = viz.cross_attack_figure([{"attack": "a", "trained_on": ["a"], "recall": 1.0},
                                     {"attack": "b", "trained_on": ["a"], "recall": 0.4}])
    assert list(cross.data[0].z[0]) == [1.0, 0.4]


def test_umap_coords_are_cached_and_place_points_on_the_same_map(tmp_path):
    from explainer.cache import Cache
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(60, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cache = Cache(tmp_path)
    base, (placed,) = maps.umap_coords(emb, seed=0, place=[emb[:5]], cache=cache)
    assert base.shape == (60, 2) and placed.shape == (5, 2)
    assert np.allclose(base, maps.fit_umap(emb, seed=0).embedding_)
    again, (placed_again,) = maps.umap_coords(emb, seed=0, place=[emb[:5]], cache=cache)
    assert np.array_equal(again, base) and np.array_equal(placed_again, placed)
    assert len(list(tmp_path.rglob("*.npz"))) == 1  # one entry, read back


def test_umaps_numba_functions_are_cached_on_disk_once_a_map_is_made():
    """Each notebook's kernel is a new process: umap's numba code must come from numba's disk
    cache, not be compiled again (``bench/maps.py`` times it)."""
    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher
    umap = maps.umap_with_cached_numba()
    emb = np.random.default_rng(1).normal(size=(30, 8)).astype(np.float32)
    maps.fit_umap(emb, seed=0, n_neighbors=5).transform(emb[:3])
    used = [umap.utils.fast_knn_indices, umap.umap_.smooth_knn_dist, umap.umap_.compute_membership_strengths]
    assert all(isinstance(f, CPUDispatcher) and isinstance(f._cache, FunctionCache) for f in used)
    for f in used:  # compiled for this map, so an index of the compiled versions is on disk
        assert Path(f._cache._cache_file._index_path).is_file(), f


def test_setup_notebook_spares_the_kernel_the_iri_parser_and_nbformat_still_validates():
    import subprocess
    import sys
    code = ("import sys; from explainer import viz; viz.setup_notebook(); import nbformat; "
            "nbformat.validate(nbformat.v4.new_notebook()); "
            "assert sys.modules.get('rfc3987_syntax') is None and 'lark' not in sys.modules, sorted(sys.modules)[:5]; "
            "import plotly.io as pio; assert pio.renderers.default == 'notebook'; "
            "import pandas as pd; assert pd.get_option('display.max_colwidth') is None")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_widgets_show_themselves_live_or_as_a_static_figure(capsys, monkeypatch):
    frames = {("fawkes", "m"): {"base": np.zeros((6, 2)), "base_labels": np.array([1, 1, 2, 2, 0, 0]),
                                "user_test": np.ones((2, 2)), "iterates": np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2),
                                "steps": np.array([0, 5, 10])}}
    w = ui.IterateUmapWidget(frames, ["u", "v", "w"], user=0)
    static = w.static()  # headless: where the cloaks ended up, not where they started
    assert isinstance(static, go.Figure) and np.allclose(static.data[2].x, [8, 10])
    assert [f.name for f in static.frames] == ["0", "5", "10"]  # and the walk, played without a kernel
    assert np.allclose(static.frames[0].data[2].x, [0, 2]) and static.layout.sliders[0].active == 2
    assert static.layout.updatemenus[0].buttons[0].method == "animate"
    shown = []
    monkeypatch.setattr(go.Figure, "show", lambda self, *a, **k: shown.append(self))
    w.show(widgets=False)
    assert len(shown) == 1 and "step 10" in shown[0].layout.title.text
    labels = np.repeat([0, 1], 5)
    coords = {"a": np.zeros((10, 2)), "b": np.ones((10, 2))}
    m = ui.ModelUmapWidget(coords, labels, ["x", "y"], start="b")
    assert m.dropdown.value == "b" and np.allclose(m.static().data[0].x, 1)
    menu = m.static().layout.updatemenus[0]  # every model one click away in the exported page
    assert [b.label for b in menu.buttons] == ["a", "b"] and menu.active == 1
    assert np.allclose(menu.buttons[0].args[0]["x"][0], 0) and "UMAP under a" in menu.buttons[0].args[1]["title.text"]
    displayed = []
    monkeypatch.setattr("IPython.display.display", lambda obj: displayed.append(obj))
    m.show(widgets=True)
    assert displayed == [m.widget]
