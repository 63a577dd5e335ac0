"""One driver for every attack: batching, the cache, the precision of the passes and the measures.

``cloak`` asks the registry for the tool (``explainer.attacks.get``) and lets it prepare and
run each batch; every finished batch is cached at once, so an interrupted run loses only the
batch in progress.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import models as zoo
from ..cache import Cache
from ..tensors import to_tensor, to_uint8
from .common import ATTACK_VERSION, PRECISIONS, Attack, CloakResult, _record, attack_extractor, attack_precision, measure
from .registry import get


def cloak(canvases: np.ndarray, attack: str, mode: str | None = None, models: tuple[str, ...] | None = None,
          users: np.ndarray | None = None, pool: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0,
          batch_size: int = 8, record_every: int | None = None, cache=None, progress: bool = True,
          device: str | torch.device | None = None, evaluate: tuple[str, ...] = (),
          steps: int | None = None, precision: str | None = None, load_iterates: bool = True) -> CloakResult:
    """Cloak uint8 canvases (N, H, W, 3) with ``attack`` in ``mode``; every batch is cached.

    ``users`` (N,) identity labels of the photos and ``pool`` (canvases, labels) of public
    identities are what a targeted tool (Fawkes v0.3) picks targets from; the others ignore
    them. ``evaluate`` adds models to the reported feature shift. ``record_every`` keeps the
    (best) iterate every so many steps. ``steps`` shortens the run (the mode's preset by
    default). ``precision`` of the attack's passes: ``attack_precision(device)`` by default;
    part of the cache key. ``load_iterates=False`` leaves the recorded iterates in the cache
    (``iterates`` is None): most callers want only the cloaks, a tenth of what is stored.
    """
    spec = get(attack)
    mode = spec.check_mode(mode)
    model_names = tuple(models or spec.default_models)
    device = torch.device(device or zoo.default_device())
    precision = precision or attack_precision(device)
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    cache = cache if cache is not None else Cache()
    canvases = np.asarray(canvases)
    steps = spec.steps(mode, steps)
    prepared = spec.prepare(canvases, model_names, users, pool, seed, cache)
    cloaked, iterates, perceptual = _cloak_batches(spec, canvases, mode, model_names, steps, precision, device, seed,
                                                  batch_size, record_every, prepared, cache, progress, load_iterates)
    measured = tuple(dict.fromkeys(model_names + tuple(evaluate)))

    def compute_measures():  # forward passes of every model: cached too, so a cached cloak costs no model time
        d, linf, shift = measure(to_tensor(canvases, device), cloaked, measured)
        return {"dssim": d, "linf": linf, **{f"shift/{k}": v for k, v in shift.items()}}

    found = cache.get_or_compute("cloak-measures", [ATTACK_VERSION, measured, canvases, cloaked], compute_measures)
    shift = {k: found[f"shift/{k}"] for k in measured}
    iterate_steps = np.array(sorted(_record(steps, record_every))) if iterates is not None else None
    return CloakResult(attack, mode, model_names, cloaked, found["dssim"], found["linf"], shift, perceptual,
                       prepared.get("targets"), iterates, iterate_steps, precision=precision)


def _cloak_batches(spec: Attack, canvases, mode, model_names, steps, precision, device, seed, batch_size,
                   record_every, prepared, cache, progress, load_iterates=True) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Run (or load) every batch: (8-bit cloaks, recorded iterates or None, perceptual term's name)."""
    extractors: list = []  # loaded on the first cache miss: cached cloaks need no model

    def loaded() -> list:
        if not extractors:
            extractors.extend(attack_extractor(zoo.load_model(n, device), precision) for n in model_names)
        return extractors
    outputs, all_iterates, perceptual_name = [], [], ""
    bar = None  # opened on the first cache miss: work the cache held leaves no bar behind (exported pages)
    for start in range(0, len(canvases), batch_size):
        chunk = canvases[start:start + batch_size]
        key = [ATTACK_VERSION, *([spec.revision] if spec.revision is not None else []), spec.name, mode, steps,
               precision, model_names, [zoo.model_info(n).crop for n in model_names], seed + start, record_every,
               chunk, spec.key_part(prepared, start, start + len(chunk))]

        def compute(chunk=chunk, start=start):
            nonlocal bar
            if bar is None:
                bar = tqdm(total=len(canvases) * steps, initial=start * steps, desc=f"{spec.name} ({mode})",
                           disable=not progress, unit="img-step")
            hook = lambda step: bar.update(len(chunk))  # noqa: E731
            out, its, name = spec.run_batch(to_tensor(chunk, device), loaded(), mode, seed + start, record_every,
                                            hook, steps, prepared, start)
            result = {"cloaked": to_uint8(out), "perceptual": np.array(name)}
            if its:
                result["iterates"] = np.stack([to_uint8(q) for q in its])
            return result

        found = cache.get_or_compute("cloaks", key, compute,
                                     members=None if load_iterates else ("cloaked", "perceptual"))
        if bar is not None and bar.n < (start + len(chunk)) * steps:
            bar.update((start + len(chunk)) * steps - bar.n)
        outputs.append(found["cloaked"])
        perceptual_name = str(found["perceptual"])
        if "iterates" in found and load_iterates:
            all_iterates.append(found["iterates"])
    if bar is not None:
        bar.close()
    cloaked = np.concatenate(outputs) if outputs else np.empty_like(canvases)
    cloaked.setflags(write=False)  # keyed on by later cache entries: read-only lets the cache remember its hash
    return cloaked, (np.concatenate(all_iterates, axis=1) if all_iterates else None), perceptual_name


def bare_step_seconds(extractors, x: torch.Tensor, attack: str, repeats: int = 3) -> float:
    """Seconds of one bare forward+backward through the extractor calls of one step of ``attack``
    on the batch ``x`` (LowKey calls each model on four views). The floor of any cloaking cost."""
    spec = get(attack)
    times = []
    for _ in range(repeats + 1):
        xi = x.clone().requires_grad_(True)
        t = time.perf_counter()
        total = sum(m(v).sum() for v in spec.views(xi) for m in extractors)
        total.backward()
        times.append(time.perf_counter() - t)
    return min(times[1:])  # the first call warms up


# Cloaking a user's own photos (``explainer cloak``) ---------------------------------------------

@dataclass
class CloakedPhoto:
    """A user's photo, the face that was cloaked, the cloaked full-size photo and what happened."""

    photo: "object"  # explainer.data.Photo
    face: "object"  # explainer.faces.AlignedFace
    cloaked: np.ndarray  # full-size uint8, the same shape as photo.image
    result: CloakResult
    notes: list[str]


def cloak_photo(source, attack: str = "fawkes-v1.0", mode: str | None = None, seed: int = 0, cache=None,
                progress: bool = False, models: tuple[str, ...] | None = None, pool=None,
                face_choice: int = 0) -> CloakedPhoto:
    """Load a photo (path or upload bytes), find its face, cloak it and carry the cloak back to full size.

    ``face_choice`` picks among several faces (0 = the largest). Raises
    ``explainer.data.PhotoError`` with a one-line reason for a bad file or a photo without a face.
    """
    from ..data import load_photo
    from ..faces import face_in_photo, paste_perturbation
    photo = load_photo(source)
    face, note = face_in_photo(photo.image, face_choice)
    if get(attack).needs_targets and pool is None:  # targets among other people's photos: the built-in faces
        from ..protocol import load_setting
        public = load_setting("orl", "classroom", seed=seed, progress=False, cache=cache)
        pool = (public.canvases, public.labels)
    result = cloak(face.canvas[None], attack, mode, models=models, users=np.array([-1]), pool=pool, seed=seed,
                   cache=cache, progress=progress)
    notes = photo.notes + ([note] if note else [])
    return CloakedPhoto(photo, face, paste_perturbation(photo.image, face, result.cloaked[0]), result, notes)
