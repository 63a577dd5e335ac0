from explainer import experiments


def _row(attack, model, attacked, rate, clean_error=0.05, available=True):
    return {"attack": attack, "model": model, "attacked": attacked, "available": available,
            "protection_rate": rate, "clean_error": clean_error}


def test_time_travel_verdicts_say_which_cloaks_survive_the_newest_model():
    results = [_row("fawkes-v1.0", "facenet-keras", True, 1.0), _row("fawkes-v1.0", "dlib-resnet", True, 0.9),
               _row("fawkes-v1.0", "sface", False, 0.12),
               _row("lowkey", "facenet-keras", True, 1.0), _row("lowkey", "sface", False, 0.5),
               _row("lowkey", "clip", False, None, available=False)]
    run = experiments.TimeTravelRun(None, "ci", 0, {"fawkes-v1.0": None, "lowkey": None}, results, [], [],
                                    {"newest_offline": "sface"})
    by_attack = {v["attack"]: v for v in run.verdicts()}
    assert by_attack["fawkes-v1.0"]["protection_on_attacked"] == 0.9  # the weakest attacked model
    assert not by_attack["fawkes-v1.0"]["still_protects"]  # 0.12 <= 0.05 + 0.10
    assert by_attack["lowkey"]["still_protects"] and by_attack["lowkey"]["protection_on_newest"] == 0.5
    assert run.verdicts(margin=0.5)[1]["still_protects"] is False


def test_cloak_shift_is_zero_for_an_invariant_model_and_large_for_a_fooled_one():
    import numpy as np
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    cloaked = 255 - clean

    def unit(v):
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    invariant = lambda c: unit(np.ones((len(c), 3)))  # noqa: E731
    fooled = lambda c: unit(c.reshape(len(c), -1)[:, :3].astype(float) - 127.5)  # noqa: E731
    assert experiments.cloak_shift(invariant(clean), invariant(cloaked)) == 0.0
    assert experiments.cloak_shift(fooled(clean), fooled(cloaked)) > 3.9  # inverted pixels: opposite embeddings


def test_same_person_distance_ignores_other_people_and_a_photo_with_itself():
    import numpy as np
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    assert experiments.same_person_distance(emb, labels) == 3.0  # (2 + 4) / 2, both ordered pairs counted


def test_protected_cloaks_are_read_once_per_scenario_and_their_iterates_only_when_asked(monkeypatch):
    import numpy as np
    from explainer import attacks
    calls = []

    def fake_cloak(canvases, attack, mode, load_iterates=True, **kw):
        calls.append(load_iterates)
        its = np.zeros((2, *canvases.shape), np.uint8) if load_iterates else None
        return attacks.CloakResult(attack, mode, (), canvases, np.zeros(len(canvases)), np.zeros(len(canvases)), {},
                                   iterates=its)
    monkeypatch.setattr(attacks, "cloak", fake_cloak)
    scenario = experiments.Scenario("orl", "ci", 0, progress=False)
    bare = experiments.protected_cloaks(scenario, "lowkey")
    assert bare.iterates is None and experiments.protected_cloaks(scenario, "lowkey") is bare
    with_iterates = experiments.protected_cloaks(scenario, "lowkey", iterates=True)
    assert with_iterates.iterates is not None
    assert experiments.protected_cloaks(scenario, "lowkey") is with_iterates  # what was read serves both
    assert calls == [False, True]
