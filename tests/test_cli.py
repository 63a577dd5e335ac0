import json
import subprocess
import sys

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
