"""The story's own pictures: the scenario, switching attacks, the waiting trainer, the arms race."""
import plotly.graph_objects as go

from explainer import arms_race

ROWS = [{"attack": a, "model": m, "model_year": y, "available": m != "clip", "attacked": m == "facenet-keras",
         "protection_rate": None if m == "clip" else p, "clean_error": e}
        for a in ("fawkes-v0.3", "lowkey")
        for m, y, p, e in (("facenet-keras", 2017, 1.0, 0.01), ("facenet-casia", 2018, 0.4, 0.02),
                           ("sface", 2021, 0.7 if a == "lowkey" else 0.03, 0.03), ("clip", 2021, None, None))]


def test_time_travel_animation_has_a_frame_per_year_in_order_and_plays_without_a_kernel():
    fig = arms_race.time_travel_animation(ROWS)
    assert [f.name for f in fig.frames] == ["2017 facenet-keras", "2018 facenet-casia", "2021 sface"]  # clip: not here
    casia = fig.frames[1]
    assert list(casia.data[0].y) == [0.4, 0.4] and list(casia.data[1].y) == [0.02, 0.02]
    assert list(fig.frames[0].data[0].text) == ["1.00 *", "1.00 *"]  # the attacked model is starred
    assert list(fig.frames[2].data[0].y) == [0.03, 0.7]
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    assert [s.label for s in fig.layout.sliders[0].steps] == [f.name for f in fig.frames]
    assert "2017" in fig.layout.title.text  # it opens on the oldest year


def test_switching_and_scenario_figures_draw():
    rows = [{"old_attack": "fawkes-v0.3", "new_attack": "lowkey", "uploads": u, "model": "sface",
             "protection_rate": p, "clean_error": 0.03} for u, p in (("new", 0.9), ("old+new", 0.03))]
    fig = arms_race.switching_figure(rows)
    assert isinstance(fig, go.Figure) and len(fig.data) >= 2
    assert isinstance(arms_race.scenario_figure(), go.Figure)


def test_adaptive_animation_has_a_frame_per_epoch_and_moves_the_cloaks():
    import numpy as np
    coords = np.zeros((3, 7, 2))
    coords[:, 5:, 0] = [[5, 5], [2, 2], [0, 0]]  # the cloaks walk back to the user's photos at 0
    frames = {"coords": coords, "user": "u", "model": "robust", "other names": ["a", "a", "b"],
              "parts": {"others": np.arange(3), "user clean": np.arange(3, 5), "lowkey": np.arange(5, 7),
                        "other labels": np.array([1, 1, 2])}}
    fig = arms_race.adaptive_animation(frames)
    assert [f.name for f in fig.frames] == ["0", "1", "2"]
    assert [list(f.data[2].x) for f in fig.frames] == [[5, 5], [2, 2], [0, 0]]
    assert "before training" in fig.layout.title.text and "after epoch 2" in fig.frames[2].layout.title.text
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"


def _compared_rows():
    from explainer.protocol import OUTSIDE_USERS, SETTING_USERS
    rows = []
    for users, rates in ((SETTING_USERS, {None: 1.0, "align": 0.03, "softmax": 0.9}),
                         (OUTSIDE_USERS, {None: 1.0, "align": 0.18, "softmax": 0.95})):
        for recipe, rate in rates.items():
            for classifier in ("1nn", "linear"):
                rows += [{"users": users, "recipe": recipe, "model": str(recipe), "attack": a, "classifier": classifier,
                          "protection_rate": rate, "protection_ci": [rate / 2, min(1.0, rate * 2)],
                          "clean_accuracy": 0.97 if recipe else 0.98} for a in ("fawkes-v1.0", "lowkey")]
    return rows


def test_users_compared_figure_sets_the_setting_users_beside_the_outsiders():
    fig = arms_race.users_compared_figure(_compared_rows())
    assert len(fig.data) == 4  # original and align, for each group of users; softmax and linear left out
    by_name = {t.name.split(" (clean")[0]: t for t in fig.data}
    outside = by_name["robust (align), people outside the setting"]
    assert list(outside.y) == [0.18, 0.18] and outside.marker.pattern.shape == "/"
    assert by_name["robust (align), the setting's protected users"].marker.pattern.shape == ""
    assert "clean accuracy 0.970" in outside.name
