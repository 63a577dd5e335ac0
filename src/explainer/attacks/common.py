"""What the three cloaking tools share: the cloak's record, budgets and measures, the precision
of the attack loops, and ``Attack``, the interface each tool implements.

Every attack works on canvases (RGB in [0, 1], see ``explainer.faces``) and returns cloaks as
8-bit images: what a user uploads, and what every measurement here is made on.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from .. import models as zoo
from ..tensors import is_grayscale, to_tensor

ATTACK_VERSION = 4  # part of every cloak's cache key: bump when the attacks' shared machinery changes
FAWKES_CONST = 1e9  # DSSIM penalty weight: in effect a hard budget


@dataclass
class CloakResult:
    """Cloaked 8-bit canvases and what they cost and achieved, per image.

    ``dssim`` and ``linf`` (in [0, 1] pixel units) compare the saved 8-bit cloak with the
    original; ``shift[model]`` is the L2 distance between their unit embeddings.
    ``iterates`` (T, N, H, W, 3) uint8, at ``iterate_steps``, when recorded.
    """

    attack: str
    mode: str
    models: tuple[str, ...]
    cloaked: np.ndarray
    dssim: np.ndarray
    linf: np.ndarray
    shift: dict[str, np.ndarray]
    perceptual: str = ""
    targets: np.ndarray | None = None  # Fawkes v0.3: the target identity of each image
    iterates: np.ndarray | None = None
    iterate_steps: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    precision: str = "fp32"  # of the attack's own forward/backward passes (``attack_precision``)

    def subset(self, which) -> "CloakResult":
        """The cloaks of some photos only (a boolean mask or indices): every per-photo field sliced."""
        return replace(self, cloaked=self.cloaked[which], dssim=self.dssim[which], linf=self.linf[which],
                       shift={k: v[which] for k, v in self.shift.items()},
                       targets=self.targets[which] if self.targets is not None else None,
                       iterates=self.iterates[:, which] if self.iterates is not None else None)


class Attack:
    """One cloaking tool. Subclasses set the class attributes and implement ``preset_steps`` and
    ``run_batch``; the driver (``explainer.attacks.cloak``) does batching, caching, precision
    and measures for all of them, so nothing outside the registry asks which tool it has."""

    name: str = ""
    released: float = 0.0  # as a year, e.g. 2020.55 for July 2020
    presets: dict = {}  # mode -> the tool's preset for it
    default_mode: str = ""
    default_models: tuple[str, ...] = ()
    revision: int | None = None  # the tool's own algorithm revision, in its cloaks' keys when set
    needs_targets = False  # whether it picks a target identity among public photos (users=, pool=)

    @property
    def modes(self) -> list[str]:
        return list(self.presets)

    def check_mode(self, mode: str | None) -> str:
        mode = mode or self.default_mode
        if mode not in self.presets:
            raise ValueError(f"Unknown mode {mode!r} for {self.name}; choose one of {', '.join(self.modes)}")
        return mode

    def preset_steps(self, mode: str) -> int:
        raise NotImplementedError

    def steps(self, mode: str, steps: int | None = None) -> int:
        """How many optimisation steps in ``mode``: ``steps`` when given (a shortened run), else the preset."""
        return steps or self.preset_steps(mode)

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """What one step feeds each extractor (its cost floor: ``bare_step_seconds``)."""
        return [x]

    def prepare(self, canvases: np.ndarray, model_names: tuple[str, ...], users, pool, seed: int, cache) -> dict:
        """What a whole run needs before its batches (Fawkes v0.3: the targets); ``{}`` by default."""
        return {}

    def key_part(self, prepared: dict, start: int, stop: int):
        """What of ``prepared`` a batch's cloaks depend on, for the cache key (``None``: nothing)."""
        return None

    def run_batch(self, x: torch.Tensor, extractors: list, mode: str, seed: int, record_every: int | None,
                  hook, steps: int, prepared: dict, start: int) -> tuple[torch.Tensor, list, str]:
        """Cloak one batch: (cloaked float batch, recorded iterates, name of the perceptual term or "")."""
        raise NotImplementedError


# Measures ---------------------------------------------------------------------------------------

def dssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural dissimilarity (1 - SSIM) / 2 per image, SSIM with an 11x11 Gaussian window (kornia)."""
    import kornia
    return (1.0 - kornia.metrics.ssim(x, y, window_size=11, max_val=1.0).mean(dim=(1, 2, 3))) / 2.0


class DSSIMTo:
    """``dssim(x, clean)`` against one fixed batch of clean photos, for an attack loop that calls it
    at every step: the clean photos' local moments are filtered once, and the three moments that
    follow the cloak are filtered channels-last (oneDNN copies an NCHW image into channel blocks
    around every depthwise convolution). The same operations on the same values as kornia's SSIM,
    in the same order: the value and its gradient equal ``dssim``'s (``tests/test_attacks.py``),
    so the cloaks do too. Sums and scalings whose result autograd does not keep run in place:
    fewer full-size temporaries, the same bits."""

    C1, C2, EPS = 0.01 ** 2, 0.03 ** 2, 1e-12  # kornia's, for max_val 1

    def __init__(self, clean: torch.Tensor, window_size: int = 11, sigma: float = 1.5):
        from kornia.filters import get_gaussian_kernel1d
        self.clean = clean.detach()
        kernel = get_gaussian_kernel1d(window_size, sigma, device=clean.device, dtype=clean.dtype).flatten()
        channels, self.radius = clean.shape[1], window_size // 2
        self.weight_x = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
        self.weight_y = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
        with torch.no_grad():
            self.mu2 = self._blur(self.clean)
            self.mu2_sq = self.mu2 ** 2
            self.sigma2_sq = self._blur(self.clean ** 2) - self.mu2_sq

    def _blur(self, img: torch.Tensor) -> torch.Tensor:
        # kornia's filter2d_separable: reflect padding, then the two depthwise passes
        r, channels = self.radius, img.shape[1]
        img = img.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=img.device.type, enabled=False):  # the budget stays float32
            out = F.conv2d(F.pad(img, [r, r, 0, 0], mode="reflect"), self.weight_x, groups=channels)
            return F.conv2d(F.pad(out, [0, 0, r, r], mode="reflect"), self.weight_y, groups=channels)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(1 - SSIM(x, clean)) / 2 per image."""
        mu1 = self._blur(x)
        mu1_sq, mu1_mu2 = mu1 ** 2, mu1 * self.mu2
        sigma1_sq = self._blur(x ** 2).sub_(mu1_sq)
        sigma12 = self._blur(x * self.clean).sub_(mu1_mu2)
        num = (2.0 * mu1_mu2).add_(self.C1) * sigma12.mul_(2.0).add_(self.C2)
        den = (mu1_sq + self.mu2_sq).add_(self.C1) * sigma1_sq.add_(self.sigma2_sq).add_(self.C2)
        return (1.0 - (num / den.add_(self.EPS)).mean(dim=(1, 2, 3))) / 2.0


def grayscale_projection(x: torch.Tensor, gray: torch.Tensor) -> torch.Tensor:
    """Keep grayscale photos grayscale: their three channels are replaced by the channel mean."""
    if not gray.any():
        return x
    mean = x.mean(dim=1, keepdim=True).expand_as(x)
    return torch.where(gray[:, None, None, None], mean, x)


# Precision of the attacks' passes --------------------------------------------------------------

PRECISIONS = ("fp32", "bf16")


@functools.lru_cache(maxsize=1)
def _cpu_has_native_bf16() -> bool:
    try:  # Linux: AVX512-BF16 or AMX; elsewhere oneDNN would emulate bf16, slower than float32
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def attack_precision(device: str | torch.device = "cpu") -> str:
    """``bf16`` where the hardware computes bfloat16 natively (recent x86 CPUs, recent GPUs):
    an attack step costs about half; else ``fp32``. ``EXPLAINER_ATTACK_PRECISION`` overrides
    (``fp32`` reproduces a cloak made on other hardware). Budgets (DSSIM) and every evaluation
    stay float32; only the extractors inside the attack loop run under autocast."""
    forced = os.environ.get("EXPLAINER_ATTACK_PRECISION")
    if forced:
        if forced not in PRECISIONS:
            raise ValueError(f"EXPLAINER_ATTACK_PRECISION={forced!r}; choose one of {', '.join(PRECISIONS)}")
        return forced
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and _cpu_has_native_bf16() else "fp32"


class Autocast(torch.nn.Module):
    """An extractor run under bfloat16 autocast (``Extractor.forward`` returns float32 either
    way): what the attack loops call in ``bf16``."""

    def __init__(self, extractor: torch.nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.extractor(x)


def attack_extractor(extractor: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The extractor (or any module) as an attack loop calls it in ``precision``; the robust
    training of ``defences`` runs its trained stages the same way."""
    return Autocast(extractor) if precision == "bf16" else extractor


def _features(models: list[zoo.Extractor], x: torch.Tensor) -> list[torch.Tensor]:
    return [m(x) for m in models]


def feature_gain(features: list[torch.Tensor], clean: list[torch.Tensor]) -> torch.Tensor:
    """Per image, sum over models of ||phi(x') - phi(x)||^2 / ||phi(x)||: how far the cloak moved."""
    return sum(((f - c) ** 2).sum(dim=1) / c.norm(dim=1) for f, c in zip(features, clean))


def target_loss(targets: list[torch.Tensor], features: list[torch.Tensor]) -> torch.Tensor:
    """Per image, sum over models of ||phi_t - phi(x')|| / ||phi_t||: how far from the target (Fawkes v0.3)."""
    return sum((t - f).norm(dim=1) / t.norm(dim=1) for t, f in zip(targets, features))


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Round to 8 bits and back: the image a user would actually upload."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


def straight_through_quantise(x: torch.Tensor) -> torch.Tensor:
    """The 8-bit image in the forward pass, the identity in the backward pass (straight-through)."""
    # quantise(x) - x, computed in place: the attack loops call this on every full-size step
    step = x.detach().clamp(0, 1)
    step.mul_(255.0).round_().div_(255.0).sub_(x.detach())
    return x + step


@torch.no_grad()
def measure(original: torch.Tensor, cloaked_u8: np.ndarray, model_names, batch_size: int = 32
            ) -> tuple[np.ndarray, np.ndarray, dict]:
    """DSSIM, L-infinity and per-model embedding shift of saved 8-bit cloaks."""
    d, linf, shift = [], [], {name: [] for name in model_names}
    for start in range(0, len(cloaked_u8), batch_size):
        clean = original[start:start + batch_size]
        cloaked = to_tensor(cloaked_u8[start:start + batch_size], original.device)
        d.append(dssim(cloaked, clean).cpu().numpy())
        linf.append((cloaked - clean).abs().amax(dim=(1, 2, 3)).cpu().numpy())
        for name in model_names:
            m = zoo.load_model(name, original.device)
            shift[name].append((m(cloaked) - m(clean)).norm(dim=1).cpu().numpy())
    cat = lambda parts: np.concatenate(parts) if parts else np.empty(0)  # noqa: E731
    return cat(d), cat(linf), {k: cat(v) for k, v in shift.items()}


# Optimising in tanh space, recording iterates ---------------------------------------------------

def _to_tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6))


def _from_tanh(w: torch.Tensor) -> torch.Tensor:
    return (torch.tanh(w) + 1).div_(2)


def _record(steps: int, every: int | None) -> set[int]:
    if not every:
        return set()
    return set(range(0, steps + 1, every)) | {steps}


def _gray(x: torch.Tensor) -> torch.Tensor:
    return is_grayscale(x)
