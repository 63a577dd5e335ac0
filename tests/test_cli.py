import json
import subprocess
import sys

import numpy as np
import pytest

from explainer import cli, notebooks


def test_doctor_lists_orl_and_models(capsys):
    report = cli.doctor()
    out = capsys.readouterr().out
    assert "orl" in out and "40 identities x 10 photos" in out
    assert report["data"]["orl"] == {"available": True, "identities": 40, "photos": 400, "offline": True}
    assert report["models"]["facenet-keras"]["available"]
    assert "needs a download" in out or all(m["available"] for m in report["models"].values())


def test_console_entry_points():
    out = subprocess.run([sys.executable, "-m", "explainer", "doctor", "--json"], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out)["data"]["orl"]["identities"] == 40
    out = subprocess.run([sys.executable, "-m", "explainer", "models"], capture_output=True, text=True, check=True).stdout
    assert "facenet-keras" in out and "sface" in out


def test_run_rejects_unknown_parameters(tmp_path, capsys):
    code = cli.main(["run", "--profile", "ci", "--out", str(tmp_path), "--only", "00", "-p", "no_such_knob=1"])
    assert code == 2
    assert "no_such_knob" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.ipynb"))  # checked before anything ran


def test_run_rejects_unknown_profile(tmp_path):
    with pytest.raises(ValueError, match="Unknown profile"):
        notebooks.run_notebooks("huge", out=tmp_path)


def test_slides_make_a_deck_of_each_executed_notebook(tmp_path, capsys):
    import nbformat
    assert cli.main(["slides", str(tmp_path)]) == 2  # nothing executed there yet: one line, no traceback
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "explainer run --out" in err
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Poisoning", metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_code_cell("1 + 1", metadata={"slideshow": {"slide_type": "subslide"}}, execution_count=1,
                                  outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)])])
    nbformat.write(nb, str(tmp_path / "01_poisoning.ipynb"))
    assert cli.main(["slides", str(tmp_path)]) == 0
    deck = (tmp_path / "01_poisoning.slides.html").read_text()
    assert "Reveal.initialize(" in deck and "<h1" in deck and ">2<" in deck.replace("\n", "")
    assert "<script src" not in deck.replace("\n", " ")


def test_cloak_a_real_photo_and_fail_cleanly_on_bad_ones(lfw_path, tmp_path, capsys):
    from PIL import Image
    photo = lfw_path / "Tony_Blair" / "Tony_Blair_0001.jpg"
    (tmp_path / "text.jpg").write_text("not an image")
    Image.new("RGB", (200, 200), (120, 130, 140)).save(tmp_path / "flat.png")
    out = tmp_path / "out"
    code = cli.main(["cloak", str(photo), str(tmp_path / "text.jpg"), str(tmp_path / "flat.png"),
                     "--attack", "fawkes-v1.0", "--mode", "low", "--out", str(out)])
    assert code == 1  # some photos failed, the others went on
    stderr = capsys.readouterr().err
    err = [line for line in stderr.splitlines() if line.startswith("explainer cloak")]
    assert len(err) == 2 and "no face" in err[1] and "Traceback" not in stderr
    (saved,) = out.glob("*.png")
    original = np.asarray(Image.open(photo).convert("RGB"), dtype=int)
    cloaked = np.asarray(Image.open(saved), dtype=int)
    assert cloaked.shape == original.shape
    diff = np.abs(cloaked - original)
    assert 0 < diff.max() <= 16  # 15/255 bound, plus rounding of the resized perturbation


def test_every_experiment_is_a_cli_choice_and_prints_its_rows(capsys):
    from explainer import experiments
    assert sorted(cli.EXPERIMENT_NAMES) == sorted(experiments.EXPERIMENTS)
    from explainer import attacks
    assert tuple(cli.ATTACK_NAMES) == attacks.ATTACKS
    cli.print_results("adaptive", {"results": [
        {"attack": "lowkey", "recipe": "align", "start": "repeat_1", "classifier": "1nn", "protection_rate_before": 1.0,
         "protection_rate": 0.1, "clean_accuracy_before": 0.99, "clean_accuracy": 0.98, "train_s": 200.0}]})
    cli.print_results("detection", {"results": [
        {"attack": "lowkey", "trained_on": ["lowkey"], "precision": 0.99, "recall": 0.98, "roc_auc": 0.999}]})
    out = capsys.readouterr().out.splitlines()
    assert "1.000 -> 0.100" in out[0] and "precision 0.990" in out[1]


def test_download_says_in_one_line_what_is_missing_offline(no_network, capsys):
    assert cli.main(["download", "no-such-model"]) == 2
    assert "Unknown model" in capsys.readouterr().err
    assert cli.main(["download", "facenet-keras"]) == 0  # an offline model is always ready
    assert "facenet-keras (2017) is ready" in capsys.readouterr().out
    from explainer import models
    if models.availability("clip-vit-b32-openai")[0]:
        pytest.skip("CLIP's weights are already on this machine")
    assert cli.main(["download", "clip-vit-b32-openai"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("explainer download: clip-vit-b32-openai") and "huggingface.co" in err
    assert "Traceback" not in err


def _fake_cloak(monkeypatch):
    """``explainer cloak`` with the attack replaced by a quick stand-in: the naming is under test."""
    from types import SimpleNamespace

    from explainer import attacks

    def fake(photo, attack, mode, seed=0, progress=False, models=None):
        value = len(str(photo)) % 200  # different inputs, different "cloaks"
        result = SimpleNamespace(mode="low", dssim=np.array([0.001]), linf=np.array([0.01]),
                                 models=models or attacks.get(attack).default_models)
        return SimpleNamespace(cloaked=np.full((4, 4, 3), value, np.uint8), notes=[], result=result)
    monkeypatch.setattr(attacks, "cloak_photo", fake)


def test_cloak_never_overwrites_another_inputs_cloak_or_an_existing_file(tmp_path, monkeypatch, capsys):
    _fake_cloak(monkeypatch)
    (tmp_path / "a").mkdir()
    (tmp_path / "bb").mkdir()
    inputs = [str(tmp_path / "a" / "me.jpg"), str(tmp_path / "bb" / "me.jpg")]
    out = tmp_path / "out"
    assert cli.main(["cloak", *inputs, "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["me_cloaked-2.png", "me_cloaked.png"]
    printed = capsys.readouterr().out
    assert "me_cloaked.png" in printed and "me_cloaked-2.png" in printed  # the message names both files
    before = (out / "me_cloaked.png").read_bytes()
    assert cli.main(["cloak", inputs[1], "--out", str(out)]) == 0  # a second run keeps the first run's files
    assert (out / "me_cloaked.png").read_bytes() == before and (out / "me_cloaked-3.png").exists()
    assert cli.main(["cloak", inputs[1], "--out", str(out), "--overwrite"]) == 0
    assert (out / "me_cloaked.png").read_bytes() != before and len(list(out.iterdir())) == 3


def test_cloak_out_that_is_a_file_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    _fake_cloak(monkeypatch)
    blocker = tmp_path / "out.txt"
    blocker.write_text("keep me")
    assert cli.main(["cloak", str(tmp_path / "me.jpg"), "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"explainer cloak: --out {blocker} is a file, not a folder"
    assert blocker.read_text() == "keep me"
    # an input is never its own output, even when it bears the output's name
    (tmp_path / "dir").mkdir()
    own = tmp_path / "dir" / "me_cloaked.png"
    own.write_bytes(b"the user's photo")
    assert cli.main(["cloak", str(tmp_path / "dir" / "me.jpg"), str(own), "--out", str(tmp_path / "dir"),
                     "--overwrite"]) == 0
    assert own.read_bytes() == b"the user's photo"


def test_cloak_attacks_the_models_asked_for_and_refuses_unknown_ones(tmp_path, monkeypatch, capsys):
    _fake_cloak(monkeypatch)
    photo = str(tmp_path / "me.jpg")
    assert cli.main(["cloak", photo, "--attack", "fawkes-v0.3", "--out", str(tmp_path / "a")]) == 0
    assert "on facenet-keras," in capsys.readouterr().out  # the tool's own model by default
    assert cli.main(["cloak", photo, "--attack", "fawkes-v0.3", "--models", "facenet-casia",
                     "--out", str(tmp_path / "b")]) == 0
    assert "on facenet-casia," in capsys.readouterr().out
    assert cli.main(["cloak", photo, "--models", "no-such-model", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("explainer cloak: unknown model 'no-such-model'") and "\n" not in err
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


@pytest.mark.parametrize("argv, code, says", [
    (["experiment", "poisoning", "--data", "{tmp}/missing", "--profile", "ci"], 2, "No such data folder"),
    (["experiment", "poisoning", "--data", "{tmp}/empty", "--profile", "ci"], 2, "holds no identity folders"),
    (["experiment", "poisoning", "--data", "{tmp}/a_file", "--profile", "ci"], 2, "is not a folder"),
    (["experiment", "poisoning", "--profile", "huge"], 2, "invalid choice: 'huge'"),
    (["experiment", "no-such-experiment"], 2, "invalid choice"),
    (["cloak", "{tmp}/me.jpg", "--attack", "fawkes-v9"], 2, "invalid choice: 'fawkes-v9'"),
    (["cloak", "{tmp}/me.jpg", "--models", "no-such-model", "--out", "{tmp}/out"], 2, "unknown model"),
    (["cloak", "{tmp}/me.jpg", "--out", "{tmp}/a_file"], 2, "is a file, not a folder"),
    (["run", "--out", "{tmp}/a_file", "--profile", "ci"], 2, "is a file, not a folder"),
    (["cloak", "{tmp}/me.jpg", "--out", "/proc/explainer-test/out"], 2, "cannot write to --out"),
    (["run", "--out", "/proc/explainer-test", "--profile", "ci", "--only", "00"], 2, "/proc/explainer-test"),
    (["run", "--profile", "ci", "--only", "99"], 2, "No notebooks matched"),
    (["download", "no-such-model"], 2, "Unknown model 'no-such-model'"),
    (["models", "--no-such-flag"], 2, "unrecognized arguments"),
    ([], 2, "required: command"),
])
def test_every_user_error_is_one_line_and_an_exit_code(argv, code, says, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("keep me")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        got = cli.main(argv)
    except SystemExit as exc:  # argparse's own exit
        got = exc.code
    err = capsys.readouterr().err
    assert got == code
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err, err
    assert (tmp_path / "a_file").read_text() == "keep me"


def test_an_unexpected_error_is_one_line_exit_3_and_debug_shows_it(monkeypatch, capsys):
    from explainer import experiments

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setitem(experiments.EXPERIMENTS, "poisoning", broken)
    assert cli.main(["experiment", "poisoning"]) == 3
    err = capsys.readouterr().err.strip()
    assert err == "explainer experiment: unexpected RuntimeError: a bug. Rerun with --debug for the traceback"
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["experiment", "poisoning", "--debug"])
    monkeypatch.setenv("EXPLAINER_DEBUG", "1")
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["experiment", "poisoning"])
