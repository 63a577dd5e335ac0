"""Detect and align faces onto one working canvas.

Every model of the zoo reads the same *canvas*: an RGB face in [0, 1], ``CANVAS`` pixels
square, centred on the face, whose side is ``CANVAS_SCALE`` times the height of the
face's MTCNN box. Each extractor then takes its own crop and size from the canvas inside
its torch graph (see ``explainer.models``), so one cloak perturbs what all models see.

Two ways onto the canvas:

* **MTCNN** (facenet-pytorch, weights inside the wheel) for unaligned photos: uploads,
  FaceScrub originals. ``detect_and_align``.
* **A fixed crop** for sets that are already aligned, where MTCNN would only add cost and
  jitter: ORL and LFW deep-funneled. The crop boxes below were measured by running MTCNN
  over those sets (``tests/test_faces.py`` re-measures them): LFW deep-funneled faces have
  a box of about 93x126 px centred at (127, 126) in the 250x250 image; ORL faces one of
  72x91 px centred at (45, 64) in the 92x112 image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

CANVAS = 224
CANVAS_SCALE = 1.5  # canvas side / MTCNN box height

# (centre x, centre y, side), as fractions of the image width, height and height.
ALIGNED_CROPS = {
    "lfw-deepfunneled": (127 / 250, 126 / 250, CANVAS_SCALE * 126 / 250),
    "orl": (45 / 92, 64 / 112, CANVAS_SCALE * 91 / 112),
}


class NoFaceError(ValueError):
    """No face was found in a photo."""


@dataclass
class AlignedFace:
    """One face on the canvas, plus where the canvas sits in the original photo.

    ``box`` is (x0, y0, side) of the canvas square in original pixel coordinates (it may
    reach outside the photo; the outside was filled by edge replication).
    """

    canvas: np.ndarray  # (CANVAS, CANVAS, 3) uint8
    box: tuple[float, float, float]
    n_faces: int = 1
    score: float = 1.0


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (H, W, 1|3|4) -> (H, W, 3); grayscale is repeated over channels."""
    image = np.asarray(image)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def crop_square(image: np.ndarray, x0: float, y0: float, side: float, size: int = CANVAS) -> np.ndarray:
    """Resample the square (x0, y0, side) of an image to ``size`` px; outside is edge-replicated."""
    rgb = to_rgb(image)
    h, w = rgb.shape[:2]
    pad = int(np.ceil(max(0, -x0, -y0, x0 + side - w, y0 + side - h))) + 1
    src = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad > 0 else rgb
    box = (x0 + pad, y0 + pad, x0 + pad + side, y0 + pad + side)
    out = Image.fromarray(src).resize((size, size), Image.BILINEAR, box=box, reducing_gap=None)
    return np.asarray(out)


def centre_crop(image: np.ndarray, preset: str | tuple[float, float, float], size: int = CANVAS) -> AlignedFace:
    """Put an already-aligned face on the canvas with a fixed crop (see ``ALIGNED_CROPS``)."""
    cx, cy, side = ALIGNED_CROPS[preset] if isinstance(preset, str) else preset
    h, w = np.asarray(image).shape[:2]
    side_px = side * h
    x0, y0 = cx * w - side_px / 2, cy * h - side_px / 2
    return AlignedFace(crop_square(image, x0, y0, side_px, size), (x0, y0, side_px))


_MTCNN = None


def mtcnn():
    """facenet-pytorch's MTCNN detector (weights ship inside the wheel), created once."""
    global _MTCNN
    if _MTCNN is None:
        from facenet_pytorch import MTCNN
        _MTCNN = MTCNN(keep_all=True, device="cpu")
    return _MTCNN


def find_faces(image: np.ndarray, size: int = CANVAS, min_confidence: float = 0.9) -> list[AlignedFace]:
    """Every face MTCNN finds with ``min_confidence`` or more, largest first, each on its canvas."""
    rgb = to_rgb(image)
    boxes, probs = mtcnn().detect(Image.fromarray(rgb))
    if boxes is None:
        return []
    keep = probs >= min_confidence
    boxes, probs = boxes[keep], probs[keep]
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")
    found = []
    for i in order:
        x0, y0, x1, y1 = boxes[i]
        side = CANVAS_SCALE * (y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        box = (cx - side / 2, cy - side / 2, side)
        found.append(AlignedFace(crop_square(rgb, *box, size), box, n_faces=len(order), score=float(probs[i])))
    return found


def detect_and_align(image: np.ndarray, size: int = CANVAS, min_confidence: float = 0.9) -> AlignedFace:
    """Find the largest face with MTCNN and put it on the canvas.

    Raises ``NoFaceError`` when no face reaches ``min_confidence``. ``n_faces`` on the result
    says how many faces were found (the largest is the one returned).
    """
    found = find_faces(image, size, min_confidence)
    if not found:
        raise NoFaceError(f"no face found with confidence >= {min_confidence}")
    return found[0]


def face_in_photo(image: np.ndarray, choice: int = 0, min_confidence: float = 0.9) -> tuple[AlignedFace, str | None]:
    """The face to cloak in a user's photo: face ``choice`` (0 = the largest) of those found.

    Returns (face, note); the note says which face was taken when there were several.
    Raises ``explainer.data.PhotoError`` (one line) when there is no face.
    """
    from .data import PhotoError
    found = find_faces(image, CANVAS, min_confidence)
    if not found:
        raise PhotoError(f"no face found (MTCNN found none with confidence >= {min_confidence})")
    if not 0 <= choice < len(found):
        raise PhotoError(f"there is no face {choice + 1}: {len(found)} face(s) found")
    face = found[choice]
    note = None
    if len(found) > 1:
        which = "the largest" if choice == 0 else f"number {choice + 1} by size"
        x0, y0, side = face.box
        note = (f"{len(found)} faces found: using face {choice + 1}, {which} "
                f"({side / CANVAS_SCALE:.0f} px tall, centred at x={x0 + side / 2:.0f}, y={y0 + side / 2:.0f})")
    return face, note


def preset_for(source: str) -> str | None:
    """The fixed-crop preset for a known pre-aligned source, or ``None`` (use MTCNN)."""
    s = str(source).lower()
    if s == "orl" or s.endswith("orl_faces"):
        return "orl"
    if "deepfunneled" in s or s == "lfw":
        return "lfw-deepfunneled"
    return None


def align_images(images: list[np.ndarray], method: str = "mtcnn", size: int = CANVAS,
                 progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Align a list of photos onto canvases.

    ``method`` is a preset name of ``ALIGNED_CROPS`` (fixed crop) or ``"mtcnn"``. Returns
    (canvases uint8 (N, size, size, 3), ok bool (N,)); photos where MTCNN finds no face
    get a fixed centre crop and ``ok=False``.
    """
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    ok = np.ones(len(images), dtype=bool)
    for i, img in enumerate(tqdm(images, desc=f"align ({method})", disable=not progress, leave=False)):
        if method == "mtcnn":
            try:
                out[i] = detect_and_align(img, size).canvas
                continue
            except NoFaceError:
                ok[i] = False
            h, w = img.shape[:2]
            out[i] = crop_square(img, (w - min(h, w)) / 2, (h - min(h, w)) / 2, min(h, w), size)
        else:
            out[i] = centre_crop(img, method, size).canvas
    return out, ok


def align_faceset(faces, method: str | None = None, cache=None, progress: bool = True) -> np.ndarray:
    """Canvases (N, CANVAS, CANVAS, 3) uint8 for a ``FaceSet``, cached on disk.

    ``method`` defaults to the fixed crop for a known pre-aligned source (``preset_for``),
    else MTCNN. The cache key is the photos' content and the method.
    """
    from .cache import Cache
    method = method or preset_for(faces.source) or "mtcnn"
    cache = cache if cache is not None else Cache()

    def compute():
        canvases, ok = align_images(faces.images, method, CANVAS, progress)
        return {"canvases": canvases, "ok": ok}

    return cache.get_or_compute("aligned", [method, CANVAS, CANVAS_SCALE, faces.images], compute)["canvases"]


def paste_perturbation(photo: np.ndarray, face: AlignedFace, cloaked_canvas: np.ndarray) -> np.ndarray:
    """Carry a canvas's cloak back into the full-resolution photo (what the Fawkes CLI saves).

    The perturbation (cloaked - original canvas) is resized to the canvas box in photo pixels,
    added where the box overlaps the photo, and rounded to 8 bits. A grayscale photo stays
    grayscale (the mean of the perturbation's channels is used).
    """
    gray = photo.ndim == 2
    rgb = to_rgb(photo).astype(np.float32)
    delta = cloaked_canvas.astype(np.float32) - face.canvas.astype(np.float32)
    x0, y0, side = face.box
    side_px = max(1, int(round(side)))
    resized = torch.from_numpy(delta).permute(2, 0, 1)[None]
    resized = F.interpolate(resized, size=(side_px, side_px), mode="bilinear", align_corners=False)[0]
    resized = resized.permute(1, 2, 0).numpy()
    h, w = rgb.shape[:2]
    left, top = int(round(x0)), int(round(y0))
    xs, ys = max(0, left), max(0, top)
    xe, ye = min(w, left + side_px), min(h, top + side_px)
    if xe > xs and ye > ys:
        rgb[ys:ye, xs:xe] += resized[ys - top:ye - top, xs - left:xe - left]
    out = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return out.mean(axis=2).round().astype(np.uint8) if gray else out
