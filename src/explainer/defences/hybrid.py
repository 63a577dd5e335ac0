"""Combining models: a linear probe on an extractor's features, Top2 and confidence-threshold
hybrids of an accurate and a robust model, and galleries that hold several versions of a photo."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import protocol


# The oblivious defence's robust variant: a linear probe on a newer extractor --------------------

PROBE_VERSION = 1  # part of a cached probe's key: bump when training changes


def train_probe(features: np.ndarray, labels: np.ndarray, dim: int = 128, epochs: int = 60, lr: float = 1e-2,
                seed: int = 0, cache=None) -> np.ndarray:
    """A linear map (D, dim) trained as a cosine softmax over ``labels`` on frozen ``features``
    (the defender's public photos, clean and cloaked, under the same labels): the offline
    stand-in for the paper's CLIP fine-tuned on cloaked public users. Embeddings are then
    ``normalise(features @ W)``. Full-batch Adam; deterministic for a seed. With a ``cache``
    (``explainer.cache.Cache``) the map is stored under a hash of its inputs and settings."""
    if cache is not None:
        return cache.get_or_compute("probe", [PROBE_VERSION, features, labels, dim, epochs, lr, seed],
                                    lambda: {"w": train_probe(features, labels, dim, epochs, lr, seed)})["w"]
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.as_tensor(features, dtype=torch.float32), dim=1)
    classes, y = np.unique(labels, return_inverse=True)
    y = torch.from_numpy(y)
    w = nn.Parameter(torch.linalg.qr(torch.randn(x.shape[1], dim, generator=gen))[0] if x.shape[1] >= dim
                     else torch.randn(x.shape[1], dim, generator=gen) / math.sqrt(x.shape[1]))
    head = nn.Parameter(torch.randn(len(classes), dim, generator=gen) * 0.01)
    opt = torch.optim.Adam([w, head], lr=lr)
    for _ in range(epochs):
        emb = F.normalize(x @ w, dim=1)
        loss = F.cross_entropy(30.0 * emb @ F.normalize(head, dim=1).T, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach().numpy()


def project(features: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Unit embeddings of ``features`` through a probe ``w`` from ``train_probe``."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    e = f @ w
    return e / np.linalg.norm(e, axis=1, keepdims=True)


# Hybrids: an accurate model and a robust one (notebook 05) --------------------------------------

def nearest(gallery_emb: np.ndarray, gallery_labels: np.ndarray, probe_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-NN labels of the probes and their cosine distance (1 - similarity) to that neighbour."""
    sim = probe_emb @ gallery_emb.T
    best = np.argmax(sim, axis=1)
    return gallery_labels[best], 1.0 - sim[np.arange(len(best)), best]


def threshold_predict(accurate: tuple[np.ndarray, np.ndarray], robust_labels: np.ndarray, tau: float) -> np.ndarray:
    """The accurate model's label unless its neighbour is farther than ``tau``; then the robust model's."""
    labels, distance = accurate
    return np.where(distance <= tau, labels, robust_labels)


@dataclass
class HybridCurves:
    """Everything notebook 05 plots, for one set of probes: per threshold ``taus``, the clean
    accuracy (nobody protected) and the protection rate (protected gallery photos cloaked) of the
    thresholded hybrid; plus both single models and Top2."""

    taus: np.ndarray
    clean_accuracy: np.ndarray
    protection_rate: np.ndarray
    single: dict  # "accurate"/"robust"/"top2" -> {"clean_accuracy", "protection_rate"}
    human_needed: float  # share of clean probes on which the two models disagree (Top2 asks a person)


def hybrid_curves(split: protocol.Split, labels: np.ndarray, views: dict[str, tuple[np.ndarray, dict]],
                  taus: np.ndarray, probes: np.ndarray | None = None) -> HybridCurves:
    """``views``: "accurate" and "robust" -> (clean embeddings of every photo, {photo index:
    cloak embedding} for the protected users' scraped photos). ``probes`` restricts the clean
    accuracy to some test photos (validation users); protection is always on ``split.protected``."""
    truth = labels[split.test]
    protected = np.isin(truth, split.protected)
    clean_mask = np.ones(len(truth), bool) if probes is None else np.isin(split.test, probes)
    out = {}
    for role, (emb, cloaked) in views.items():
        items, gallery_labels, _ = protocol.gallery(split, labels, emb, cloaked)
        out[role, "cloaked"] = nearest(items, gallery_labels, emb[split.test])
        out[role, "clean"] = nearest(emb[split.train], labels[split.train], emb[split.test])
    acc_c, rob_c = out["accurate", "clean"], out["robust", "clean"]
    acc_p, rob_p = out["accurate", "cloaked"], out["robust", "cloaked"]
    clean_acc = np.array([np.mean(threshold_predict(acc_c, rob_c[0], t)[clean_mask] == truth[clean_mask]) for t in taus])
    protection = np.array([np.mean(threshold_predict(acc_p, rob_p[0], t)[protected] != truth[protected]) for t in taus])

    def rates(clean_ok, prot_ok):
        return {"clean_accuracy": float(np.mean(clean_ok[clean_mask])), "protection_rate": float(1 - np.mean(prot_ok[protected]))}
    single = {"accurate": rates(acc_c[0] == truth, acc_p[0] == truth), "robust": rates(rob_c[0] == truth, rob_p[0] == truth),
              "top2": rates((acc_c[0] == truth) | (rob_c[0] == truth), (acc_p[0] == truth) | (rob_p[0] == truth))}
    return HybridCurves(np.asarray(taus), clean_acc, protection, single, float(np.mean(acc_c[0] != rob_c[0])))


def choose_tau(curves: HybridCurves, tolerance: float = 0.01) -> float:
    """The threshold a defender would pick on validation users: the lowest protection among
    thresholds whose clean accuracy is within ``tolerance`` of the best one (ties: the largest
    threshold, which uses the accurate model most)."""
    ok = curves.clean_accuracy >= curves.clean_accuracy.max() - tolerance
    best = curves.protection_rate[ok].min()
    return float(curves.taus[ok & (curves.protection_rate == best)].max())


def union_gallery_evaluation(split: protocol.Split, labels: np.ndarray, clean_emb: np.ndarray, protected_idx: np.ndarray,
                             cloak_emb: np.ndarray) -> protocol.Evaluation:
    """The protocol when every scraped photo of the protected users is online in several cloaked
    versions (``cloak_emb``: the versions stacked, each in ``protected_idx`` order): 1-NN."""
    others = split.train[~np.isin(split.train, protected_idx)]
    copies = len(cloak_emb) // len(protected_idx)
    items = np.concatenate([clean_emb[others], cloak_emb])
    item_labels = np.concatenate([labels[others], np.tile(labels[protected_idx], copies)])
    return protocol.score(split, labels, protocol.nn1_predict(items, item_labels, clean_emb[split.test]))
