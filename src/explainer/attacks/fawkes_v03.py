"""Fawkes v0.3 (Shan et al., July 2020): a targeted cloak. Each photo's features are pulled
toward another identity's, picked among the public identities farthest from the user, under
a DSSIM budget; Adadelta in tanh space; modes min to ultra."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import models as zoo
from .common import (FAWKES_CONST, Attack, DSSIMTo, _features, _from_tanh, _gray, _record, _to_tanh, dssim,
                     grayscale_projection, quantise, straight_through_quantise, target_loss)

# (dssim budget rho, steps, learning rate) per mode, as in the tool's presets.
FAWKES_V03_MODES = {"min": (0.002, 20, 40), "low": (0.003, 50, 35), "mid": (0.005, 200, 20),
                    "high": (0.008, 500, 10), "ultra": (0.01, 1000, 8)}
TARGET_POOL_FARTHEST = 20


def fawkes_v03_batch(x: torch.Tensor, models: list[zoo.Extractor], target_emb: list[torch.Tensor], mode: str,
                     seed: int, record_every: int | None = None, step_hook=None, steps: int | None = None):
    """Fawkes v0.3 on a batch: pull each photo's features toward its target embedding under a DSSIM budget.

    ``target_emb[k]`` (N, D) is phi_t for model k. Loss, minimised with Adadelta in tanh space:
    const * max(DSSIM - rho, 0)^2 + sum_k ||phi_t - phi_k(x')|| / ||phi_t||. The learning rate
    decays x0.8 every max_iter/3 steps; the best iterate within the budget is kept.
    """
    rho, _, lr = FAWKES_V03_MODES[mode]
    steps = steps or FAWKES_V03_MODES[mode][1]
    torch.manual_seed(seed)
    gray = _gray(x)
    budget = DSSIMTo(x)
    w = _to_tanh(x).clone().requires_grad_(True)
    opt = torch.optim.Adadelta([w], lr=lr, rho=0.95, eps=1e-8)
    decay_every = max(1, steps // 3)
    best = x.clone()
    best_loss = torch.full((len(x),), float("inf"), device=x.device)
    record = _record(steps, record_every)
    iterates = [x.clone()] if 0 in record else []
    for step in range(1, steps + 1):
        xa = grayscale_projection(_from_tanh(w), gray)
        d = budget(straight_through_quantise(xa))  # the budget is that of the uploaded 8-bit image
        feature_loss = target_loss(target_emb, _features(models, xa))
        loss = FAWKES_CONST * F.relu(d - rho) ** 2 + feature_loss
        with torch.no_grad():
            improved = (d <= rho) & (feature_loss < best_loss)
            best[improved] = xa.detach()[improved]
            best_loss[improved] = feature_loss.detach()[improved]
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if step % decay_every == 0:
            for group in opt.param_groups:
                group["lr"] *= 0.8
        if step in record:
            iterates.append(best.clone())
        if step_hook:
            step_hook(step)
    with torch.no_grad():  # the final iterate counts too
        xa = grayscale_projection(_from_tanh(w), gray)
        feature_loss = target_loss(target_emb, _features(models, xa))
        improved = (dssim(quantise(xa), x) <= rho) & (feature_loss < best_loss)
        best[improved] = xa[improved]
    return best, iterates


def choose_targets(user_emb: np.ndarray, users: np.ndarray, pool_emb: np.ndarray, pool_labels: np.ndarray,
                   seed: int, farthest: int = TARGET_POOL_FARTHEST) -> dict[int, int]:
    """Per user, a target identity drawn at random among the ``farthest`` public identities.

    A class's distance to a user is the minimum, over the user's photos, of the L2 distance to
    the class centroid. The user's own identity is never a target.
    """
    rng = np.random.default_rng([seed, 1777])
    classes = np.unique(pool_labels)
    centroids = np.stack([pool_emb[pool_labels == c].mean(0) for c in classes])
    targets = {}
    for user in np.unique(users):
        mine = user_emb[users == user]
        dist = np.linalg.norm(mine[:, None, :] - centroids[None], axis=2).min(0)
        candidates = [c for c in classes[np.argsort(-dist)] if c != user][:farthest]
        targets[int(user)] = int(rng.choice(candidates))
    return targets


class FawkesV03(Attack):
    name = "fawkes-v0.3"
    released = 2020.55  # July 2020
    presets = FAWKES_V03_MODES
    default_mode = "high"
    default_models = ("facenet-keras",)
    needs_targets = True

    def preset_steps(self, mode: str) -> int:
        return FAWKES_V03_MODES[mode][1]

    def prepare(self, canvases, model_names, users, pool, seed, cache) -> dict:
        """Targets, chosen in the first model's embedding space, and every model's embeddings
        of the users' photos and of the public pool, from which the target features follow."""
        if users is None or pool is None:
            raise ValueError("fawkes-v0.3 needs users= (labels of the photos) and pool= (public canvases, labels)")
        users = np.asarray(users)
        pool_canvases, pool_labels = pool
        pool_by_model = {n: zoo.embeddings(n, pool_canvases, cache, progress=False) for n in model_names}
        user_by_model = {n: zoo.embeddings(n, canvases, cache, progress=False) for n in model_names}
        first = model_names[0]
        target_of = choose_targets(user_by_model[first], users, pool_by_model[first], pool_labels, seed)
        return {"targets": np.array([target_of[int(u)] for u in users]), "users": users, "pool_labels": pool_labels,
                "pool_by_model": pool_by_model, "user_by_model": user_by_model, "model_names": model_names}

    def key_part(self, prepared, start, stop):
        return prepared["targets"][start:stop]

    def target_features(self, prepared: dict, idx: np.ndarray, device) -> list[torch.Tensor]:
        """Per model, phi(x) + 2 (mean phi(target) - mean phi(user)) for the photos ``idx``."""
        users, targets, pool_labels = prepared["users"], prepared["targets"], prepared["pool_labels"]
        out = []
        for n in prepared["model_names"]:
            pool_n, user_n = prepared["pool_by_model"][n], prepared["user_by_model"][n]
            shift = [user_n[i] + 2 * (pool_n[pool_labels == targets[i]].mean(0) - user_n[users == users[i]].mean(0))
                     for i in idx]
            out.append(torch.tensor(np.stack(shift), dtype=torch.float32, device=device))
        return out

    def run_batch(self, x, extractors, mode, seed, record_every, hook, steps, prepared, start):
        target_emb = self.target_features(prepared, np.arange(start, start + len(x)), x.device)
        out, its = fawkes_v03_batch(x, extractors, target_emb, mode, seed, record_every, hook, steps)
        return out, its, ""
