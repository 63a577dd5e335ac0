"""The results store notebook 07 reads, the comparisons with the paper and the results page."""
import numpy as np
import pytest

from explainer import experiments, protocol, results, results_page


def _reports():
    """Small reports with the shapes the experiments write (three attacks, one protected user)."""
    attacks = ("fawkes-v0.3", "fawkes-v1.0", "lowkey")
    settings = {"data": "orl", "identities": 10, "photos": 100, "protected_users": 1, "protected_test_photos": 3,
                "newest_offline": "sface"}
    poisoning = {"settings": settings, "results": [
        {"attack": a, "model": "facenet-keras", "attacked": True, "classifier": c, "protection_rate": p,
         "unprotected_error": 0.02, "clean_error": 0.01}
        for a, p in zip(attacks, (1.0, 0.9, 0.8)) for c in ("1nn", "e2e")]}
    adaptive = {"settings": settings, "results": [
        {"attack": a, "recipe": "align", "classifier": "1nn", "protection_rate": p, "protection_rate_before": 1.0,
         "clean_accuracy": 0.98, "clean_accuracy_before": 0.99} for a, p in zip(attacks, (0.0, 0.1, 0.2))]}
    detection = {"settings": settings, "results": [
        {"attack": a, "trained_on": list(attacks), "precision": 0.95, "recall": 1.0} for a in attacks],
        "filter": [{"attack": a, "protection_rate_after": 1.0, "cloaks_removed": 7, "cloaks": 7} for a in attacks]}
    time_travel = {"settings": settings, "results": [
        {"attack": a, "model": m, "model_year": y, "available": m != "clip-vit-b32-openai",
         "attacked": m == "facenet-keras", "protection_rate": None if m == "clip-vit-b32-openai" else p,
         "clean_error": 0.0}
        for a in attacks for m, y, p in (("facenet-keras", 2017, 1.0), ("facenet-casia", 2018, 0.5),
                                         ("sface", 2021, 0.33 if a == "lowkey" else 0.0),
                                         ("clip-vit-b32-openai", 2021, None))],
        "switching": [{"old_attack": "fawkes-v0.3", "new_attack": "fawkes-v1.0", "uploads": "old+new",
                       "model": "sface", "protection_rate": 0.0, "clean_error": 0.0}]}
    hybrid = {"settings": settings, "results": {
        "accurate": {"model": "sface", "clean_accuracy": 0.99, "protection_rate": 0.3},
        "robust": {"model": "robust", "clean_accuracy": 0.97, "protection_rate": 0.1},
        "threshold": {"model": "sface | robust", "clean_accuracy": 0.99, "protection_rate": 0.1, "tau": 0.3,
                      "per_attack": dict(zip(attacks, (0.0, 0.1, 0.2)))}}}
    return {"poisoning": poisoning, "adaptive": adaptive, "detection": detection, "time-travel": time_travel,
            "hybrid": hybrid}


def test_recorded_reports_come_back_per_data_profile_and_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path))
    reports = _reports()
    assert results.recorded("orl", "ci") == {}
    assert results.missing_notebooks({}) == list(results.NOTEBOOK_OF.values())
    results.record("poisoning", reports["poisoning"], "orl", "ci", 0)
    assert results.recorded("ORL", "ci", 0) == {"poisoning": reports["poisoning"]}
    assert results.recorded("orl", "classroom", 0) == {} and results.recorded("orl", "ci", 1) == {}
    assert results.missing_notebooks(results.recorded("orl", "ci"))[0] == "02_adaptive_defence"
    assert not list(tmp_path.rglob(".tmp-*"))  # written atomically, nothing left behind


def test_compare_puts_this_runs_number_beside_each_paper_figure():
    reports = _reports()
    rows = {r["claim"] + r["paper"]: r for r in results.compare("time-travel", reports["time-travel"])}
    assert rows["protection rate on a newer extractor (MagFace, 2021)1.00"]["this run"] == "0.33"  # LowKey on SFace
    assert rows["protection rate on a newer extractor (MagFace, 2021)0.00"]["this run"] == "0.00"
    clip = next(r for r in rows.values() if "CLIP" in r["claim"])
    assert clip["paper"] == "0.24" and clip["this run"] == "—" and "download" in clip["this run's setting"]
    poisoning = results.compare("poisoning", reports["poisoning"])
    assert poisoning[0]["paper"] == "0.55-0.77" and poisoning[0]["this run"] == "0.80-1.00"
    for name, report in reports.items():
        assert all(r["this run"] != "—" or "download" in r["this run's setting"] for r in results.compare(name, report))
        assert results.headline(name, report)


def test_arms_race_gathers_every_move_with_the_papers_figure_where_there_is_one():
    rows = results.arms_race(_reports())
    by = {(r["move"], r["attack"]): r for r in rows}
    assert len(rows) == 5 * 3
    assert by["none (notebook 01)", "fawkes-v1.0"]["paper"] == 0.97
    assert by["adaptive model (02)", "lowkey"]["protection_rate"] == 0.2
    assert by["newer model (04)", "lowkey"]["paper"] == 1.0  # the paper's MagFace figure
    assert by["detector filter (03)", "lowkey"]["paper"] is None  # no source gives one
    assert by["none (notebook 01)", "fawkes-v0.3"]["paper"] is None
    assert len(results.arms_race({"poisoning": _reports()["poisoning"]})) == 3


def test_results_page_keeps_one_section_per_data_set(tmp_path):
    page = tmp_path / "docs" / "results.md"
    reports = _reports()
    for title in ("orl (classroom)", "lfw (classroom)", "orl (classroom)"):
        results_page.update_page(page, title, results_page.markdown_section(title, reports, {"measured": title}), "# Results\n")
    text = page.read_text()
    assert text.startswith("# Results") and text.count("## orl (classroom)") == 1 and "## lfw (classroom)" in text
    assert "| 01 poisoning | protection, attacked FaceNet (1-NN) | 1.00 | 0.90 | 0.80 |" in text
    assert "switching fawkes-v0.3 -> fawkes-v1.0" in text
    assert "| 04 time travel | protection on facenet-keras (2017; its clean error; * attacked) | 1.00 (0.00)* |" in text
    assert "| 04 time travel | protection on facenet-casia (2018; its clean error; * attacked) | 0.50 (0.00) |" in text
    assert text.index("on facenet-casia (2018") < text.index("on sface (its clean error)")


def test_data_note_says_how_much_one_photo_moves_a_rate():
    assert "0.07" in results.data_note("orl", 15)
    assert "LFW" in results.data_note("/data/lfw-deepfunneled-20", 30)


def _switching_setting():
    """Four people, four photos each (3 scraped, 1 probe); person 0 is protected. Canvases are
    photo numbers; old cloaks are 1000 + photo, new cloaks 2000 + photo."""
    labels = np.repeat(np.arange(4), 4)
    train = np.flatnonzero(np.arange(16) % 4 != 3)
    test = np.flatnonzero(np.arange(16) % 4 == 3)
    split = protocol.Split(train, test, np.array([0]))
    faces = type("Faces", (), {"labels": labels, "names": ["a", "b", "c", "d"], "source": "test"})()
    setting = protocol.Setting(faces, np.arange(16)[:, None], split)
    protected_idx = split.protected_train(labels)
    cloaks = {a: type("Cloak", (), {"cloaked": (base + protected_idx)[:, None]})()
              for a, base in (("fawkes-v0.3", 1000), ("fawkes-v1.0", 2000))}
    return setting, cloaks


def _judge(labels, fooled_by: set):
    def embed(canvases):
        out = []
        for v in canvases[:, 0]:
            kind, photo = divmod(int(v), 1000)
            owner = labels[photo]
            fooled = (kind == 1 and "old" in fooled_by) or (kind == 2 and "new" in fooled_by)
            out.append(-np.eye(4)[owner] if fooled else np.eye(4)[owner])  # a fooled model: as far as can be
        return np.array(out)
    return embed


def test_switching_shows_the_old_cloaks_giving_the_user_away():
    setting, cloaks = _switching_setting()
    judges = {"fooled by both": _judge(setting.labels, {"old", "new"}),
              "fooled by the new cloak only": _judge(setting.labels, {"new"})}
    assert experiments.switch_pairs(("lowkey", "fawkes-v1.0", "fawkes-v0.3")) == [
        ("fawkes-v0.3", "fawkes-v1.0"), ("fawkes-v0.3", "lowkey"), ("fawkes-v1.0", "lowkey")]
    rows = experiments.switching_rows(setting, cloaks, judges)
    by = {(r["model"], r["uploads"]): r for r in rows}
    assert {r["old_attack"] for r in rows} == {"fawkes-v0.3"} and {r["new_attack"] for r in rows} == {"fawkes-v1.0"}
    assert by["fooled by both", "new"]["protection_rate"] == 1.0
    assert by["fooled by both", "old+new"]["protection_rate"] == 1.0
    # The new cloak alone looks protective; with the old photos still scraped, it is not.
    assert by["fooled by the new cloak only", "new"]["protection_rate"] == 1.0
    assert by["fooled by the new cloak only", "old+new"]["protection_rate"] == 0.0
    assert all(r["clean_error"] == 0.0 for r in rows)
    assert set(rows[0]) >= {"old_attack", "new_attack", "uploads", "model", "protection_rate", "clean_error"}


@pytest.mark.slow
def test_poisoning_report_carries_the_papers_figures_and_is_recorded(tmp_path, monkeypatch, session_cache):
    # Reports are recorded in this test's own cache; the faces, embeddings and cloaks are the
    # session's (notebook 01 under ci made them), so they are not computed twice.
    for kind in ("aligned", "embeddings", "cloaks", "cloak-measures"):
        (session_cache / kind).mkdir(exist_ok=True)
        (tmp_path / kind).symlink_to(session_cache / kind, target_is_directory=True)
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path))
    run = experiments.run_poisoning(experiments.Scenario("orl", "ci", 0, progress=False), eval_models=["facenet-keras"],
                                    classifiers=("1nn",), attack_names=("fawkes-v1.0",))
    report = run.to_json()
    assert report["paper"] and all("value" in e and "source" in e for e in report["paper"])
    assert report["settings"]["protected_test_photos"] == 3
    assert results.recorded("orl", "ci", 0)["poisoning"]["results"] == report["results"]


def test_settings_table_is_short_readable_rows():
    settings = {"data": "orl", "profile": "ci", "seed": 0, "identities": 40, "photos": 400, "protected_users": 5,
                "protected_test_photos": 15, "modes": {"fawkes-v0.3": "min", "lowkey": "paper"},
                "attack_models": {"lowkey": ["facenet-keras", "dlib-resnet"]}, "lowkey_steps": 10, "seconds": 12.5}
    rows = results.settings_table(settings)
    table = {r["setting"]: r["value"] for r in rows}
    assert table["People"] == "40" and table["Protected users' test photos"] == "15"
    assert table["The users' cloaks (tool: preset)"] == "fawkes-v0.3: min · lowkey: paper"
    assert table["Models the cloaks attack"] == "lowkey: facenet-keras, dlib-resnet"
    assert table["Time taken (s)"] == "12.5"
    assert "lowkey_steps" not in str(rows) and "seed" not in table  # technical keys stay in the JSON
    assert all(isinstance(r["value"], str) and "{" not in r["value"] for r in rows)


def test_preparation_times_go_into_the_results_page_from_the_benchmarks_report(tmp_path):
    """``bench/notebooks.py --from-json REPORT --markdown PAGE`` writes the preparation section
    beside the data sets' sections, with the totals and one row per notebook."""
    import json
    bench = _bench("notebooks")
    page = tmp_path / "results.md"
    results_page.update_page(page, "orl (ci)", results_page.markdown_section("orl (ci)", _reports(), {"measured": "x"}))
    report = {"profile": "classroom", "data": "orl", "cold_s": 2900.5, "warm_s": 52.1, "floor_s": 1470.3,
              "cold_over_floor": 1.97, "peak_rss_gb": 4.4, "measured": "2026-12-02", "machine": "a laptop",
              "notebooks": {"01_poisoning": {"cold_s": 1500.0, "warm_s": 9.5, "cold_peak_rss_gb": 3.1},
                            "00_setting": {"cold_s": 20.0, "warm_s": 6.0, "cold_peak_rss_gb": 1.2}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert bench.main(["--from-json", str(tmp_path / "report.json"), "--markdown", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# Results") and "## orl (ci)" in text and "## preparation: orl (classroom)" in text
    assert "| cold / floor | 1.97 |" in text and "| cloaking floor (s) | 1470.3 |" in text
    assert "| 01_poisoning | 1500 | 9.5 | 3.1 |" in text and text.index("| 00_setting") < text.index("| 01_poisoning")
    assert "a laptop" in text and "cache written" not in text  # a figure the report lacks is left out
    assert "--data orl --floor_" in text
    (tmp_path / "report.json").write_text(json.dumps({k: v for k, v in report.items() if "floor" not in k}))
    assert bench.main(["--from-json", str(tmp_path / "report.json"), "--markdown", str(page)]) == 0
    assert "--data orl_" in page.read_text() and "cold / floor" not in page.read_text()  # says how it was run


def test_the_notebook_benchmarks_json_is_all_that_goes_to_stdout(tmp_path, monkeypatch, capsys):
    """``bench/notebooks.py --json``: the notebooks' progress lines go to stderr, so the report parses."""
    import json

    import explainer.notebooks
    bench = _bench("notebooks")

    def run_notebooks(profile, data, out, only, progress=True, on_done=None):
        print(f"{only[0]}.ipynb: 0.1 s -> {out}")
        on_done(only[0], 0.1)
        return {only[0]: 0.1}
    monkeypatch.setattr(explainer.notebooks, "run_notebooks", run_notebooks)
    assert bench.main(["--profile", "ci", "--only", "07", "--no-warm", "--cache", str(tmp_path / "c"), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert list(report["notebooks"]) == ["07_conclusion"] and report["notebooks"]["07_conclusion"]["cold_s"] == 0.1
    assert "07_conclusion.ipynb: 0.1 s" in captured.err


def test_cloak_strength_compares_two_reports_and_the_cloaks_both_caches_hold(tmp_path, capsys):
    """``bench/cloak_strength.py``: experiment 01's attacked-FaceNet figures side by side, and the
    cloak entries both caches hold counted as equal only when every array matches to the bit."""
    import json
    from explainer.cache import Cache
    bench = _bench("cloak_strength")

    def report(rate, dssim):
        rows = [{"attack": a, "model": m, "attacked": True, "classifier": k, "protection_rate": rate,
                 "unprotected_error": 0.05, "dssim_mean": dssim, "linf_max_255": 15}
                for a in ("fawkes-v0.3", "lowkey") for m in ("facenet-keras", "dlib-resnet") for k in ("1nn", "linear")]
        return {"results": rows, "settings": {"data": "lfw", "profile": "classroom", "seed": 0, "protected": ["a"],
                                              "protected_users": 1, "protected_test_photos": 30}}
    for name, rep in (("before", report(0.9, 0.004)), ("after", report(0.9, 0.005))):
        (tmp_path / f"{name}.json").write_text(json.dumps(rep))
    cloak = {"cloaked": np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)}
    for name in ("before", "after"):
        Cache(tmp_path / name).save("cloaks", "same", cloak)
        Cache(tmp_path / name).save("cloaks", "moved", {"cloaked": cloak["cloaked"] + (name == "after")})
    Cache(tmp_path / "before").save("cloaks", "only-before", cloak)
    page = tmp_path / "results.md"
    assert bench.main([str(tmp_path / "before.json"), str(tmp_path / "after.json"), "--caches",
                       str(tmp_path / "before"), str(tmp_path / "after"), "--markdown", str(page)]) == 0
    out = capsys.readouterr().out
    assert "| fawkes-v0.3 | 0.90, 0.90 | 0.050, 0.050 | 0.00400, 0.00500 | 15, 15 |" in out
    assert "before 3, after 2, in both caches: 2, equal to the bit: 1" in out and "dlib" not in out
    text = page.read_text()
    assert "## cloak strength before and after: lfw (classroom)" in text and "equal to the bit: 1." in text
    assert bench.main([str(tmp_path / "before.json"), "--caches", str(tmp_path / "before"), str(tmp_path / "after")]) == 0
    assert "| fawkes-v0.3 | 0.90 | 0.050 | 0.00400 | 15 |" in capsys.readouterr().out  # no report after: the cloaks say it
    other = report(0.9, 0.004)
    other["settings"]["protected"] = ["b"]
    (tmp_path / "after.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="protected"):
        bench.main([str(tmp_path / "before.json"), str(tmp_path / "after.json")])


def test_users_compared_text_gives_both_groups():
    from tests.test_arms_race import _compared_rows
    report = {"users_compared": _compared_rows(),
              "settings": {"chosen_on": {"never chosen on": "2 people outside the setting (a, b)"}}}
    text = results.users_compared_text(report)
    assert "on the setting's protected users: fawkes-v1.0 0.03 (1.00), lowkey 0.03 (1.00)" in text
    assert "on people outside the setting: fawkes-v1.0 0.18 (1.00)" in text and "(a, b)" in text


def _bench(name: str):
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).parents[1] / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_candidates_are_chosen_on_held_out_users_within_the_time_budget(tmp_path):
    """``bench/adaptive_pairs.py --variants``: the rule never looks at the protected users or the
    people outside the setting, skips candidates over the training budget, and the page shows all."""
    bench = _bench("adaptive_pairs")
    assert bench.parse_variant("mirrored,epochs=3") == {"mirrored": True, "epochs": 3}
    assert bench.parse_variant("default") == {} and bench.parse_variant("flip,epochs=9") == {"flip": True, "epochs": 9}
    assert bench.parse_variant("seed=2") == {"train_seed": 2}

    def row(variant, train_s, val, val_clean, outside):
        attacks_ = {a: {"validation_protection_after": val, "protection_after": 0.0, "protection_before": 1.0,
                        "outside_protection_after": outside, "outside_protection_before": 1.0} for a in ("x", "y")}
        return {"variant": variant, "train_s": train_s, "validation_protection_mean_after": val,
                "validation_clean_accuracy_after": val_clean, "validation_clean_accuracy_before": 0.99,
                "outside_clean_accuracy_after": 0.98, "outside_clean_accuracy_before": 0.99, "attacks": attacks_}
    rows = [row("default", 140, 0.2, 0.985, 0.3), row("epochs=12", 310, 0.1, 0.98, 0.0),
            row("lr=0.01", 150, 0.05, 0.90, 0.0), row("mirrored", 200, 0.15, 0.99, 0.5),
            row("mirrored,seed=1", 200, 0.05, 0.99, 0.3), row("refit", 250, 0.0, 1.0, 0.1)]
    rows[-2]["train_seed"], rows[-1]["refit"] = 1, True
    chosen = bench.select_variant(rows, budget_s=300)
    # epochs=12 over budget, lr=0.01 loses accuracy, another seed measures a spread, a refit model trained on the
    # held-out users; outside figures ignored
    assert chosen["variant"] == "mirrored"
    for r in rows:
        r["selected"] = r is chosen
    page = tmp_path / "results.md"
    bench.write_section(page, "../shared/data/lfw-deepfunneled-20", "classroom", rows, 300)
    text = page.read_text()
    assert "## adaptive recipe candidates: lfw-deepfunneled-20 (classroom)" in text
    assert "| mirrored | 200 | 0.15 / 0.15 (0.150) | 0.990 | yes | 0.00 / 0.00 | 0.50 / 0.50 | 0.980 |" in text
    assert "| refit | 250 | (trained on them) | (trained on them) |  | 0.00 / 0.00 | 0.10 / 0.10 | 0.980 |" in text
    # the spread of the recipe trained twice: mean (lowest-highest) per attack
    assert "| mirrored | ? 1 | 0.10 (0.05-0.15) / 0.10 (0.05-0.15) | 0.00 (0.00-0.00) / 0.00 (0.00-0.00) | " \
           "0.40 (0.30-0.50) / 0.40 (0.30-0.50) | 0.98 (0.98-0.98) |" in text
