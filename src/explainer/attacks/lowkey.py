"""LowKey (Cherepanova et al., ICLR 2021): signed-gradient ascent over an ensemble, on the image
and a Gaussian-smoothed copy (with flips), minus a perceptual distance.

LowKey's perceptual term is LPIPS (AlexNet). Its AlexNet backbone downloads at run time, so
offline a documented substitute, ``1 - SSIM`` (kornia), runs; results say which one ran
(``CloakResult.perceptual``).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from .. import models as zoo
from .common import Attack, _gray, _record, feature_gain, grayscale_projection

LOWKEY_SETTINGS = {"step": 0.0025, "steps": 50, "start": 0.005, "lpips_weight": 0.05, "blur_kernel": 7,
                   "blur_sigma": 3.0}


_LPIPS = None


def perceptual_distance():
    """LPIPS (AlexNet) when its backbone weights are on disk; else the substitute 1 - SSIM.

    Returns (name, function of (x, y) -> per-image distance).
    """
    global _LPIPS
    try:
        if _LPIPS is None:
            from torch.hub import get_dir
            alexnet = os.path.join(get_dir(), "checkpoints", "alexnet-owt-7be5be79.pth")
            if not os.path.exists(alexnet):
                raise FileNotFoundError(alexnet)
            import lpips
            _LPIPS = lpips.LPIPS(net="alex", verbose=False).eval().requires_grad_(False)
        net = _LPIPS
        return "lpips-alex", lambda x, y: net.to(x.device)(x * 2 - 1, y * 2 - 1).flatten()
    except (FileNotFoundError, ImportError, OSError, RuntimeError):
        import kornia
        return "1-ssim (LPIPS substitute, offline)", lambda x, y: 1.0 - kornia.metrics.ssim(
            x, y, window_size=11, max_val=1.0).mean(dim=(1, 2, 3))


def lowkey_features(models: list[zoo.Extractor], x: torch.Tensor, smoothed: bool = True) -> list[torch.Tensor]:
    """LowKey's ensemble: each model on the image (and, with ``smoothed``, on a Gaussian-smoothed
    copy), l2norm(f(x) + f(flip x)); the smoothed views follow the plain ones."""
    import kornia
    k, s = LOWKEY_SETTINGS["blur_kernel"], LOWKEY_SETTINGS["blur_sigma"]
    views = (x, kornia.filters.gaussian_blur2d(x, (k, k), (s, s))) if smoothed else (x,)
    out = []
    for variant in views:
        flipped = torch.flip(variant, dims=[3])
        for m in models:
            out.append(F.normalize(m(variant) + m(flipped), dim=1))
    return out


def lowkey_batch(x: torch.Tensor, models: list[zoo.Extractor], seed: int, record_every: int | None = None,
                 step_hook=None, steps: int | None = None):
    """LowKey on a batch: signed-gradient ascent of mean((F(x') - F(x))^2 / ||F(x)||) - 0.05 * LPIPS.

    As in LowKey's paper and code, both the plain and the smoothed view of the cloak are pushed
    away from the features of the plain clean photo F(x), and the mean runs over views, models
    and embedding dimensions: that scale is what the perceptual weight 0.05 is set against.
    Step 0.0025, 50 iterations, uniform start within +-0.005, pixels clamped to [0, 1]. A
    shortened run (``steps``) takes larger steps so that it can reach as far (0.125) as the paper's.
    """
    steps = steps or LOWKEY_SETTINGS["steps"]
    step_size = LOWKEY_SETTINGS["step"] * LOWKEY_SETTINGS["steps"] / steps
    weight = LOWKEY_SETTINGS["lpips_weight"]
    perceptual_name, perceptual = perceptual_distance()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    gray = _gray(x)
    with torch.no_grad():
        plain = lowkey_features(models, x, smoothed=False)
        clean = plain + plain  # the smoothed views are compared with the plain photo's features too
        start = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device) * LOWKEY_SETTINGS["start"]
        xa = grayscale_projection((x + start).clamp(0, 1), gray)
    record = _record(steps, record_every)
    iterates = [x.clone()] if 0 in record else []
    for step in range(1, steps + 1):
        xa.requires_grad_(True)
        feats = lowkey_features(models, xa)
        gain = feature_gain(feats, clean) / (len(feats) * feats[0].shape[1])  # a mean over dimensions too
        objective = gain - weight * perceptual(xa, x)
        (grad,) = torch.autograd.grad(objective.sum(), xa)
        with torch.no_grad():
            xa = grayscale_projection((xa + step_size * grad.sign()).clamp(0, 1), gray)
        if step in record:
            iterates.append(xa.detach().clone())
        if step_hook:
            step_hook(step)
    return xa.detach(), iterates, perceptual_name


class LowKey(Attack):
    name = "lowkey"
    released = 2021.35  # ICLR 2021
    presets = {"paper": None}  # one setting, the paper's
    default_mode = "paper"
    default_models = ("facenet-keras", "dlib-resnet")
    revision = 2  # its loss as in LowKey's paper and code

    def preset_steps(self, mode: str) -> int:
        return LOWKEY_SETTINGS["steps"]

    def views(self, x):
        import kornia
        k, s = LOWKEY_SETTINGS["blur_kernel"], LOWKEY_SETTINGS["blur_sigma"]
        smooth = kornia.filters.gaussian_blur2d(x, (k, k), (s, s))
        return [x, torch.flip(x, [3]), smooth, torch.flip(smooth, [3])]

    def run_batch(self, x, extractors, mode, seed, record_every, hook, steps, prepared, start):
        return lowkey_batch(x, extractors, seed, record_every, hook, steps)
