import warnings

import numpy as np
import pytest
from PIL import Image

from explainer import data


def write_folder(root, layout):
    for identity, n in layout.items():
        (root / identity).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((20, 20, 3), 10 * i, np.uint8)).save(root / identity / f"{i}.png")
    return root


def test_orl_is_the_offline_default(monkeypatch):
    monkeypatch.delenv("EXPLAINER_DATA", raising=False)
    faces = data.load_faces()
    assert faces.source == "orl"
    assert faces.n_identities == 40
    assert len(faces) == 400
    assert np.all(faces.counts() == 10)
    assert faces.images[0].shape == (112, 92)  # grayscale, as read


def test_env_selects_default_source(monkeypatch, tmp_path):
    write_folder(tmp_path / "set", {"a": 3, "b": 3})
    monkeypatch.setenv("EXPLAINER_DATA", str(tmp_path / "set"))
    faces = data.load_faces()
    assert faces.names == ["a", "b"] and len(faces) == 6


def test_lfw_folder(lfw_path):
    faces = data.load_faces(lfw_path)
    assert faces.n_identities == 62
    assert len(faces) == 3023
    assert faces.images[0].shape == (250, 250, 3)


def test_options_min_images_max_identities_seed(tmp_path):
    root = write_folder(tmp_path / "set", {"a": 2, "b": 5, "c": 5, "d": 6, "e": 7})
    faces = data.load_faces(root, min_images=5)
    assert faces.names == ["b", "c", "d", "e"]
    one = data.load_faces(root, min_images=5, max_identities=2, seed=3)
    again = data.load_faces(root, min_images=5, max_identities=2, seed=3)
    assert one.names == again.names and len(one.names) == 2
    others = {tuple(data.load_faces(root, min_images=5, max_identities=2, seed=s).names) for s in range(10)}
    assert len(others) > 1  # the seed matters
    capped = data.load_faces(root, max_images=3)
    assert capped.counts().max() == 3


def test_corrupt_files_skipped_with_one_warning(tmp_path):
    root = write_folder(tmp_path / "set", {"a": 3, "b": 3})
    (root / "a" / "bad.jpg").write_bytes(b"this is not a jpeg")
    (root / "b" / "empty.png").write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        faces = data.load_faces(root)
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 1 and "Skipped 2" in messages[0]
    assert len(faces) == 6 and len(faces.skipped) == 2


@pytest.mark.parametrize("make, match", [
    (lambda p: p / "missing", "No such data folder"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "not a folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no identity folders"),
    (lambda p: ((p / "flat").mkdir(), Image.new("RGB", (5, 5)).save(p / "flat" / "x.png"))[0] or p / "flat",
     "no identity folders"),
])
def test_bad_folders_are_clear_errors(tmp_path, make, match):
    with pytest.raises(data.DataSourceError, match=match):
        data.load_faces(make(tmp_path))


def test_too_few_images_is_an_error(tmp_path):
    root = write_folder(tmp_path / "set", {"a": 2})
    with pytest.raises(data.DataSourceError, match="or more readable images"):
        data.load_faces(root, min_images=5)


def test_sklearn_lfw_offline_names_the_folder_option(no_network, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    with pytest.raises(data.DataSourceError, match="lfw-deepfunneled-20"):
        data.load_faces("lfw")


def test_read_image_modes(tmp_path):
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "alpha.png")
    assert data.read_image(tmp_path / "alpha.png")[0, 0].tolist() == [255, 255, 255]  # alpha on white
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert data.read_image(tmp_path / "deep.png").dtype == np.uint8


def test_fuzzed_photo_files_load_or_are_refused_in_one_line():
    """Random bytes, damaged real JPEG/PNG/WebP/GIF files, lying headers and odd modes: each one
    is a face, "no face" or the loader's own one-line ``PhotoError``, never another exception.
    Bounded and derandomised for ``make test``; ``bench/fuzz.py`` runs 10,000."""
    from hypothesis import HealthCheck, given, settings

    from tests.fuzz_inputs import outcome, photo_files

    seen = set()

    @settings(max_examples=60, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(photo_files())
    def check(raw):
        seen.add(outcome(raw).split(":")[0])

    check()
    assert "refused" in seen  # the strategies reach the refusals, not only clean files
