"""Fawkes v1.0 (early 2021): an untargeted cloak. Features are pushed away from the photo's own
over an ensemble, with a DSSIM penalty balanced per image and the per-pixel change clipped to
15/255; modes low, mid, high."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import models as zoo
from .common import (FAWKES_CONST, Attack, DSSIMTo, _features, _from_tanh, _gray, _record, _to_tanh, dssim, feature_gain,
                     grayscale_projection, quantise, straight_through_quantise)

# (dssim budget rho, steps, learning rate) per mode, as in the tool's presets.
FAWKES_V10_MODES = {"low": (0.004, 40, 25), "mid": (0.012, 75, 20), "high": (0.017, 150, 15)}
V10_BOUND = 15 / 255  # Fawkes v1.0 clips the per-pixel change
V10_START = 2 / 255  # random start: the untargeted objective has zero gradient at x' = x


def fawkes_v10_batch(x: torch.Tensor, models: list[zoo.Extractor], mode: str, seed: int,
                     record_every: int | None = None, step_hook=None, steps: int | None = None):
    """Fawkes v1.0 on a batch: push features away from the photo's own, over an ensemble.

    Maximises sum_k ||phi_k(x') - phi_k(x)||^2 / ||phi_k(x)|| (unit features) with the penalty
    const * max(DSSIM - rho, 0)^2; a per-image weight c_diff on the feature term is doubled
    when DSSIM < 0.9 rho and halved when DSSIM > 1.1 rho. Per-pixel change clipped to 15/255,
    random start, Adadelta in tanh space.
    """
    rho, _, lr = FAWKES_V10_MODES[mode]
    steps = steps or FAWKES_V10_MODES[mode][1]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    gray = _gray(x)
    budget = DSSIMTo(x)
    with torch.no_grad():
        clean = [f.detach() for f in _features(models, x)]
        start = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device) * V10_START
        start = grayscale_projection(start, gray)
    w = _to_tanh((x + start).clamp(0, 1)).clone().requires_grad_(True)
    opt = torch.optim.Adadelta([w], lr=lr, rho=0.95, eps=1e-8)
    c_diff = torch.ones(len(x), device=x.device)
    best = x.clone()
    best_gain = torch.full((len(x),), -float("inf"), device=x.device)
    record = _record(steps, record_every)
    iterates = [x.clone()] if 0 in record else []

    def cloak_of(w):
        xa = grayscale_projection(_from_tanh(w), gray)
        return x + (xa - x).clamp(-V10_BOUND, V10_BOUND)

    for step in range(1, steps + 1):
        xa = cloak_of(w)
        d = budget(straight_through_quantise(xa))  # the budget is that of the uploaded 8-bit image
        gain = feature_gain(_features(models, xa), clean)
        loss = FAWKES_CONST * F.relu(d - rho) ** 2 - c_diff * gain
        with torch.no_grad():
            ok = (d <= rho) & (gain > best_gain)
            best[ok] = xa.detach()[ok]
            best_gain[ok] = gain.detach()[ok]
            c_diff = torch.where(d < 0.9 * rho, c_diff * 2, torch.where(d > 1.1 * rho, c_diff / 2, c_diff))
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if step in record:
            iterates.append(best.clone())
        if step_hook:
            step_hook(step)
    with torch.no_grad():
        xa = cloak_of(w)
        gain = feature_gain(_features(models, xa), clean)
        ok = (dssim(quantise(xa), x) <= rho) & (gain > best_gain)
        best[ok] = xa[ok]
    return best, iterates


class FawkesV10(Attack):
    name = "fawkes-v1.0"
    released = 2021.1  # early 2021
    presets = FAWKES_V10_MODES
    default_mode = "high"
    default_models = ("facenet-keras", "dlib-resnet")

    def preset_steps(self, mode: str) -> int:
        return FAWKES_V10_MODES[mode][1]

    def run_batch(self, x, extractors, mode, seed, record_every, hook, steps, prepared, start):
        out, its = fawkes_v10_batch(x, extractors, mode, seed, record_every, hook, steps)
        return out, its, ""
