"""The adaptive defence: fine-tune the attacked extractor on clean/cloaked pairs so that a cloak
lands where its clean photo does. Two recipes: FaceCure's softmax over public identities with the
cloaked copies under their true labels (``"softmax"``), and embedding alignment,
``||f(cloaked) - f0(clean)||^2 + 2 ||f(clean) - f0(clean)||^2`` with ``f0`` the frozen original
(``"align"``). Sized for a CPU: only the later blocks train, on early activations computed once;
the trained weights are cached under a hash of everything that went into them."""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import attacks, protocol
from .. import models as zoo
from ..cache import Cache, content_hash, frozen
from ..models import facenet
from ..tensors import to_tensor
from .training import load_trained, run_epochs, trained_arrays, warmup_cosine


RECIPES = ("align", "softmax")


# The depths the adaptive defence tries, deepest last: head only; the top blocks; all but the
# first two convolutions. On LFW, training from further down generalised better to cloaks never
# trained on (held-out public users' protection, mean of the three attacks: 0.72 from repeat_1,
# 0.52 from conv2d_4a, 0.40 from conv2d_2b) for about the same time (237 / 227 / 248 s; the
# frozen early activations are precomputed once).
STARTS = ("last_linear", "repeat_3", "conv2d_2b")


ROBUST_VERSION = 2  # part of every trained model's cache key: bump when training changes


# The adaptive defence: a robust extractor -------------------------------------------------------

class StagedNet(nn.Module):
    """The original early stages (frozen) followed by fine-tuned later stages."""

    def __init__(self, early: nn.Module, late: nn.Module):
        super().__init__()
        self.early, self.late = early, late

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.late(self.early(x))


@dataclass
class RobustModel:
    """A fine-tuned extractor and how it was made. ``extractor`` has the zoo's interface; it is
    built from the cached weights on first use (cached embeddings need no weights)."""

    base: str
    recipe: str
    start: str
    trained_on: tuple[str, ...]
    build: Callable[[], zoo.Extractor] = field(repr=False)
    train_s: float
    losses: np.ndarray  # mean training loss per epoch
    key: str  # content hash of everything that went into it (names its cached embeddings)
    watch_emb: np.ndarray | None = None  # (epochs + 1, W, D): the watched photos before and after each epoch

    @property
    def name(self) -> str:
        return f"{self.base} robust ({self.recipe})"

    @functools.cached_property
    def extractor(self) -> zoo.Extractor:
        return self.build()

    def embeddings(self, canvases: np.ndarray, cache=None, progress: bool = False) -> np.ndarray:
        """Unit embeddings (N, 128) of uint8 canvases under the robust model (cached)."""
        return zoo.cached_embeddings(["robust", self.key], lambda: self.extractor, canvases, cache, progress=progress)


def embed_jointly(robust: list[RobustModel], canvases, cache=None, batch_size: int = 16) -> list[np.ndarray]:
    """Each model's ``embeddings(canvases)``: the same values under the same cache entries,
    computed together. Every model starts from the same frozen original stages, so on a miss
    one pass through them per batch feeds every model that lacks these canvases, each from its
    own start (a model trained from ``last_linear`` then costs next to nothing)."""
    if len({m.base for m in robust}) > 1:
        raise ValueError("models fine-tuned from different extractors share no stages")
    canvases = frozen(canvases)  # keyed once per model: hashed once
    return zoo.cached_embeddings_of([["robust", m.key] for m in robust],
                                    lambda missing: _through_shared_stages([robust[i] for i in missing], canvases,
                                                                           batch_size), canvases, cache)


def joint_embedders(robust: list[RobustModel], cache=None) -> list[Callable[[np.ndarray], np.ndarray]]:
    """One ``canvases -> embeddings`` per model, equal to ``robust[i].embeddings``: the first
    call on a set of canvases runs :func:`embed_jointly` for every model and keeps the result,
    so the other models take their share of it instead of reading all the cache entries again
    (N models scored one after the other: N reads per set of canvases, not N x N)."""
    joint: dict[str, list[np.ndarray]] = {}

    def embedder(i: int):
        def embed(canvases):
            canvases = frozen(canvases)
            key = content_hash("joint", [canvases])  # a frozen array's digest is remembered
            if key not in joint:
                joint[key] = embed_jointly(robust, canvases, cache)
            return joint[key][i]
        return embed
    return [embedder(i) for i in range(len(robust))]


def _through_shared_stages(robust: list[RobustModel], canvases, batch_size: int) -> list[np.ndarray]:
    # Extractor.forward of each model's StagedNet, step by step: the same operations on the same
    # values (the early stages run in order, cut where a model starts), so the same bits.
    original = zoo.load_model(robust[0].base, "cpu")
    cuts = sorted({facenet.STAGES.index(m.start) for m in robust})
    lates = [(facenet.STAGES.index(m.start), m.extractor.net.late) for m in robust]
    out: list[list[torch.Tensor]] = [[] for _ in robust]
    with torch.no_grad():
        for i in range(0, len(canvases), batch_size):
            x = original.preprocess(to_tensor(canvases[i:i + batch_size])).contiguous(memory_format=torch.channels_last)
            at, done = {}, 0
            for cut in cuts:
                x = at[cut] = facenet.Stages(original.net, facenet.STAGES[done:cut])(x)
                done = cut
            for emb, (cut, late) in zip(out, lates):
                emb.append(F.normalize(late(at[cut]).flatten(1).float(), dim=1))
    dim = original.info.embedding_dim
    return [torch.cat(e).numpy() if e else np.empty((0, dim), np.float32) for e in out]


def _activations(stages: nn.Module, model: zoo.Extractor, canvases: np.ndarray, batch_size: int = 32) -> torch.Tensor:
    # channels-last: oneDNN's faster convolutions for the stages trained on these
    with torch.no_grad():
        return torch.cat([stages(model.preprocess(to_tensor(canvases[i:i + batch_size])))
                          for i in range(0, len(canvases), batch_size)]).contiguous(memory_format=torch.channels_last)


def train_robust(clean: np.ndarray, cloaked: np.ndarray, source: np.ndarray, labels: np.ndarray,
                 recipe: str = "align", start: str = STARTS[-1], base: str = "facenet-keras", epochs: int = 10,
                 lr: float = 2.5e-4, batch_size: int = 32, seed: int = 0, trained_on: tuple[str, ...] = (),
                 precision: str | None = None, cache=None, progress: bool = True,
                 watch: np.ndarray | None = None, flip: bool = False) -> RobustModel:
    """Fine-tune ``base`` from stage ``start`` up on clean/cloaked pairs of public photos (cached).

    ``clean`` (M, H, W, 3) uint8 public photos with identity ``labels`` (M,); ``cloaked``
    (P, H, W, 3) the defender's cloaks, ``source`` (P,) the index in ``clean`` each was made
    from. BatchNorm keeps its statistics; Adam with ``lr``, one epoch of warm-up, cosine decay
    (a higher rate on few pairs costs clean accuracy; the profiles' ``robust_lr`` goes with their
    number of pairs). ``precision`` (default: :func:`attacks.attack_precision`): in ``bf16`` the
    trained stages' passes run under bfloat16 autocast (weights, optimiser and losses stay
    float32), which is faster on a processor with native bf16.

    * ``"align"``: ``||f(cloaked) - f0(clean)||^2 + 2 ||f(clean) - f0(clean)||^2`` on unit
      embeddings, ``f0`` the frozen original: cloaks are pulled onto their clean photo while
      clean photos stay where they were.
    * ``"softmax"`` (FaceCure): a cosine softmax over the public identities, started at their
      clean centroids, on clean photos and their cloaks under the same labels.

    ``watch`` (W, H, W, 3) canvases are embedded before training and after every epoch (no
    retraining, no extra randomness): ``watch_emb``, how the model moves them as it learns
    (notebook 02's animation). They join the cache key only when given. ``flip``: at every step
    each pair is replaced, with probability 1/2, by its mirror image (both photos mirrored, the
    target the mirrored clean photo's), for the same cost per step; it joins the key only when set.
    """
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if base != "facenet-keras":
        raise NotImplementedError("the robust recipes fine-tune facenet-keras, the extractor every attack targets")
    cache = cache if cache is not None else Cache()
    precision = precision or attacks.attack_precision("cpu")
    clean, cloaked = frozen(clean), frozen(cloaked)  # in three keys below: hashed once
    source, labels = np.asarray(source), np.asarray(labels)
    key_parts = [ROBUST_VERSION, base, recipe, start, epochs, lr, batch_size, seed, precision, clean, cloaked, source,
                 labels if recipe == "softmax" else None] + ([watch] if watch is not None else [])
    key_parts += ["flip"] if flip else []
    key = content_hash("robust", key_parts)

    def compute():
        return _fine_tune(base, recipe, start, clean, cloaked, source, labels, epochs, lr, batch_size, seed, precision,
                          progress, watch, flip)

    def build() -> zoo.Extractor:
        found = cache.get_or_compute("robust", key_parts, compute)
        model = zoo.load_model(base, "cpu")
        early, late = facenet.split_at(model.net, start)
        load_trained(late, found)
        info = dataclasses.replace(model.info, name=f"{base} robust ({recipe})", role="the trainer's adaptive model")
        return zoo.Extractor(info, StagedNet(early, late), model._normalise)

    # The training record is tiny and cached on its own, so a warm run never reads the 90-MB weights.
    meta = cache.get_or_compute_part("robust", "robust-meta", key_parts, compute, ("train_s", "losses", "watch_emb"))
    return RobustModel(base, recipe, start, tuple(trained_on), build, float(meta["train_s"]), meta["losses"], key,
                       meta.get("watch_emb"))


def _fine_tune(base, recipe, start, clean, cloaked, source, labels, epochs, lr, batch_size, seed, precision,
               progress, watch=None, flip=False) -> dict:
    """Train ``base``'s stages from ``start`` up on the pairs with ``recipe``; the trained weights as arrays."""
    model = zoo.load_model(base, "cpu")
    early, late = facenet.split_at(model.net, start)
    late.eval()  # fine-tune weights, keep BatchNorm statistics
    t0 = time.perf_counter()
    a_clean, a_cloaked = _activations(early, model, clean), _activations(early, model, cloaked)
    mirrored = [_activations(early, model, np.ascontiguousarray(x[:, :, ::-1])) for x in (clean, cloaked)] if flip else []
    with torch.no_grad():  # f0(clean): late is still the original here
        target, *target_mirrored = [F.normalize(late(a), dim=1) for a in [a_clean, *mirrored[:1]]]
    classes, y = np.unique(labels, return_inverse=True)
    y = torch.from_numpy(y)
    params = list(late.parameters())
    if recipe == "softmax":
        centroids = torch.stack([target[y == c].mean(0) for c in range(len(classes))])
        weight = nn.Parameter(F.normalize(centroids, dim=1))
        params.append(weight)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    src = torch.from_numpy(source)
    batches_per_epoch = math.ceil(len(src) / batch_size)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(epochs * batches_per_epoch, batches_per_epoch))

    trained = attacks.attack_extractor(late, precision)  # the attacks' own autocast rule

    def embed(activations):
        return F.normalize(trained(activations).float(), dim=1)

    def batch_loss(batch):
        s = src[batch]
        k, c, t = a_cloaked[batch], a_clean[s], target[s]
        if flip:
            k, c, t = _mirrored_at_random(gen, (k, mirrored[1][batch]), (c, mirrored[0][s]), (t, target_mirrored[0][s]))
        if recipe == "align":
            e_cloaked, e_clean = embed(torch.cat([k, c])).split(len(batch))
            return ((e_cloaked - t) ** 2).sum(1).mean() + 2 * ((e_clean - t) ** 2).sum(1).mean()
        emb = embed(torch.cat([k, c]))
        return F.cross_entropy(30.0 * emb @ F.normalize(weight, dim=1).T, torch.cat([y[s], y[s]]))

    watched = []
    a_watch = _activations(early, model, watch) if watch is not None else None

    def look():  # the watched photos as the model stands now
        with torch.no_grad():
            watched.append(F.normalize(late(a_watch).float(), dim=1).numpy())
    if a_watch is not None:
        look()
    losses = run_epochs(batch_loss, opt, sched, epochs, len(src), batch_size, gen,
                        f"robust {base} ({recipe}, from {start})", progress, look if a_watch is not None else None)
    return {**trained_arrays(late, t0, losses), **({"watch_emb": np.stack(watched)} if watched else {})}


def _mirrored_at_random(gen: torch.Generator, *pairs: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    """Each (plain, mirrored) pair of batches merged: row i from the mirrored batch with
    probability 1/2, the same draw for every pair."""
    take = torch.rand(len(pairs[0][0]), generator=gen) < 0.5
    return [torch.where(take.view(-1, *[1] * (plain.dim() - 1)), mirror, plain) for plain, mirror in pairs]


def select(candidates: list[dict], before_clean_accuracy: float, tolerance: float = 0.02) -> dict:
    """The candidate a defender would deploy, chosen on validation users only: the lowest mean
    validation protection among those whose validation clean accuracy is within ``tolerance``
    of the original model's (the most accurate one when none is)."""
    ok = [c for c in candidates if c["validation_clean_accuracy"] >= before_clean_accuracy - tolerance]
    if not ok:
        return max(candidates, key=lambda c: c["validation_clean_accuracy"])
    return min(ok, key=lambda c: (c["validation_protection"], -c["validation_clean_accuracy"]))


def with_clean_photos(split: protocol.Split, labels: np.ndarray, clean_emb: np.ndarray, cloaked_emb: dict[int, np.ndarray],
                      per_user: int = 1, classifier: str = "1nn", seed: int = 0) -> protocol.Evaluation:
    """The protocol when ``per_user`` unperturbed photos of each protected user are already online:
    the clean version of their first scraped photo(s) joins the gallery beside all the cloaks."""
    items, gallery_labels, _ = protocol.gallery(split, labels, clean_emb, cloaked_emb)
    scraped = split.protected_train(labels)
    extra = np.concatenate([scraped[labels[scraped] == u][:per_user] for u in split.protected])
    items = np.concatenate([items, clean_emb[extra]])
    gallery_labels = np.concatenate([gallery_labels, labels[extra]])
    predictions = protocol.fit_predict(classifier, items, gallery_labels, clean_emb[split.test], seed)
    return protocol.score(split, labels, predictions)
