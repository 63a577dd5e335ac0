"""Fuzzed photo files for the loader (``tests/test_data.py``) and ``bench/fuzz.py``.

Hypothesis strategies that build the bytes of a would-be photo: random bytes; truncations and
bit flips of real JPEG, PNG, WebP and GIF files of a face; headers claiming huge or zero sizes;
images in odd modes (P, LA, I;16, CMYK, 1-bit). ``outcome(raw)`` runs the reading path of
``explainer cloak`` on them and names what happened.
"""
from __future__ import annotations

import functools
import io
import struct
import zlib

import numpy as np
from hypothesis import strategies as st
from PIL import Image

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MODES = {"P": "PNG", "LA": "PNG", "I;16": "PNG", "CMYK": "JPEG", "1": "PNG", "RGBA": "WEBP"}
SIZES = (0, 1, 2, 63, 64, 65535, 2 ** 16 + 1, 2 ** 31 - 1, 2 ** 32 - 1)


@functools.lru_cache(maxsize=None)
def face_image() -> Image.Image:
    """A small RGB photo of one ORL face on a plain background (the seeds the mutations start from)."""
    from explainer.data import orl_folder, read_image
    face = read_image(orl_folder() / "s1" / "1.pgm")
    canvas = np.full((224, 184), 190, np.uint8)
    canvas[56:168, 46:138] = face
    rgb = np.stack([canvas, canvas, canvas], axis=2).astype(np.int16)
    rgb[..., 0] += 12
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


@functools.lru_cache(maxsize=None)
def encoded(fmt: str, mode: str = "RGB") -> bytes:
    img = face_image() if mode == "RGB" else face_image().convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img, np.uint16) * 257)  # 16-bit grey: mode I;16
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (checksums right, so only the size is wrong)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _gif_with_size(width: int, height: int) -> bytes:
    raw = bytearray(encoded("GIF"))
    raw[6:10] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)  # the logical screen
    return bytes(raw)


def _jpeg_with_size(width: int, height: int) -> bytes:
    raw = bytearray(encoded("JPEG"))
    sof = raw.find(b"\xff\xc0")
    raw[sof + 5:sof + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    return bytes(raw)


def random_bytes():
    return st.binary(min_size=0, max_size=2048)


def mutated_real_files():
    """A real face file (any format or odd mode), truncated and/or with bits flipped."""
    seeds = st.sampled_from([(f, "RGB") for f in FORMATS] + [(f, m) for m, f in MODES.items()])

    @st.composite
    def build(draw):
        fmt, mode = draw(seeds)
        raw = bytearray(encoded(fmt, mode))
        for position in draw(st.lists(st.integers(0, len(raw) - 1), max_size=8)):
            raw[position] ^= 1 << draw(st.integers(0, 7))
        if draw(st.booleans()):
            raw = raw[:draw(st.integers(0, len(raw)))]
        return bytes(raw)
    return build()


def lying_headers():
    size = st.sampled_from(SIZES)
    return st.builds(lambda f, w, h: f(w, h), st.sampled_from([_png_with_size, _gif_with_size, _jpeg_with_size]),
                     size, size)


def odd_modes():
    return st.builds(lambda pair: encoded(pair[1], pair[0]), st.sampled_from(list(MODES.items())))


def photo_files():
    """Every kind above, in one strategy."""
    return st.one_of(random_bytes(), mutated_real_files(), lying_headers(), odd_modes())


def outcome(raw: bytes, find_face: bool = True) -> str:
    """What ``explainer cloak``'s reading path makes of ``raw``: "face", "no face" or
    "refused: <first words>"; any other exception propagates (a failure of the property)."""
    from explainer.data import PhotoError, load_photo
    try:
        photo = load_photo(raw, name="fuzzed")
        if not find_face:
            return "loaded"
        from explainer.faces import face_in_photo
        face, _ = face_in_photo(photo.image)
    except PhotoError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        return "no face" if message.startswith("no face") else "refused: " + " ".join(message.split()[:3])
    assert face.canvas.dtype == np.uint8 and face.canvas.ndim == 3
    return "face"
