import numpy as np
import pytest
import torch

from explainer import data, faces, tensors


def test_grayscale_becomes_three_equal_channels():
    gray = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    rgb = faces.to_rgb(gray)
    assert rgb.shape == (20, 30, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])
    canvas = faces.centre_crop(gray, "orl").canvas
    assert canvas.shape == (faces.CANVAS, faces.CANVAS, 3)
    assert tensors.is_grayscale(tensors.to_tensor(canvas[None])).all()


def test_canvas_range_and_roundtrip():
    img = np.random.default_rng(0).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    canvases, ok = faces.align_images([img], "orl", progress=False)
    x = tensors.to_tensor(canvases)
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(tensors.to_uint8(x), canvases)


def box_side_and_centre(image):
    boxes, probs = faces.mtcnn().detect(faces.Image.fromarray(faces.to_rgb(image)))
    i = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    x0, y0, x1, y1 = boxes[i]
    return y1 - y0, (x0 + x1) / 2, (y0 + y1) / 2


def check_preset_matches_mtcnn(images, preset):
    """The fixed crop of a pre-aligned set must agree with what MTCNN measures on it."""
    cx, cy, side = faces.ALIGNED_CROPS[preset]
    measured = np.array([box_side_and_centre(im) for im in images])
    h, w = images[0].shape[:2]
    assert abs(np.median(measured[:, 0]) * faces.CANVAS_SCALE / h - side) < 0.06 * side
    assert abs(np.median(measured[:, 1]) / w - cx) < 0.04
    assert abs(np.median(measured[:, 2]) / h - cy) < 0.04


def test_orl_preset_matches_mtcnn():
    faceset = data.load_faces("orl", max_images=1)
    check_preset_matches_mtcnn(faceset.images[:20], "orl")


def test_lfw_preset_matches_mtcnn(lfw_path):
    faceset = data.load_faces(lfw_path, max_images=1, max_identities=20)
    check_preset_matches_mtcnn(faceset.images, "lfw-deepfunneled")


def test_mtcnn_aligns_like_the_preset(lfw_path):
    """On an LFW photo, MTCNN's canvas and the fixed crop show the same face region."""
    faceset = data.load_faces(lfw_path, max_images=1, max_identities=3)
    for img in faceset.images:
        detected = faces.detect_and_align(img)
        preset = faces.centre_crop(img, "lfw-deepfunneled")
        assert detected.n_faces >= 1
        assert abs(detected.box[2] - preset.box[2]) < 0.15 * preset.box[2]


def test_no_face_is_a_clear_error():
    with pytest.raises(faces.NoFaceError):
        faces.detect_and_align(np.full((200, 200, 3), 127, np.uint8))
    canvases, ok = faces.align_images([np.full((200, 200, 3), 127, np.uint8)], "mtcnn", progress=False)
    assert not ok[0] and canvases.shape == (1, faces.CANVAS, faces.CANVAS, 3)


def test_preset_for_known_sources():
    assert faces.preset_for("orl") == "orl"
    assert faces.preset_for("/x/lfw-deepfunneled-20") == "lfw-deepfunneled"
    assert faces.preset_for("/photos/mine") is None


def test_align_faceset_is_cached(tmp_path):
    from explainer.cache import Cache
    faceset = data.load_faces("orl", max_identities=2, max_images=2)
    cache = Cache(tmp_path)
    a = faces.align_faceset(faceset, cache=cache, progress=False)
    assert len(list((tmp_path / "aligned").glob("*.npz"))) == 1
    b = faces.align_faceset(faceset, cache=cache, progress=False)
    assert np.array_equal(a, b) and a.shape == (4, faces.CANVAS, faces.CANVAS, 3)
