"""The cloaking attacks, the users' side of the arms race: Fawkes v0.3, Fawkes v1.0 and LowKey.

The original tools are TensorFlow programs that download their own extractors; these are
re-implementations in PyTorch, run against extractors of the zoo (``explainer.models``).
Each tool is an ``Attack`` in the registry (``get(name)``); one driver (``cloak``) runs any of
them batched on CPU or GPU with an explicit seed, caches each finished batch on disk, and
returns the cloaks as **8-bit images**: what a user uploads, and what every measurement here
is made on.

Default extractors tell the time-travel story: the "attacker's era" models are
``facenet-keras`` (Fawkes v0.3) and ``facenet-keras`` + ``dlib-resnet`` (the ensembles of
Fawkes v1.0 and LowKey); ``sface`` is the "future" model, never attacked by default. Pass
``models=`` to change that.
"""
from __future__ import annotations

from .common import (ATTACK_VERSION, PRECISIONS, Attack, Autocast, CloakResult, DSSIMTo, _cpu_has_native_bf16,
                     attack_extractor, attack_precision, dssim, feature_gain, grayscale_projection, measure, quantise,
                     straight_through_quantise)
from .driver import CloakedPhoto, bare_step_seconds, cloak, cloak_photo
from .fawkes_v03 import FAWKES_V03_MODES, choose_targets, fawkes_v03_batch
from .fawkes_v10 import FAWKES_V10_MODES, V10_BOUND, fawkes_v10_batch
from .lowkey import LOWKEY_SETTINGS, lowkey_batch, lowkey_features, perceptual_distance
from .registry import ATTACKS, HARDEST, REGISTRY, get

RELEASED = {name: a.released for name, a in REGISTRY.items()}
DEFAULT_MODELS = {name: a.default_models for name, a in REGISTRY.items()}

__all__ = ["ATTACKS", "ATTACK_VERSION", "Attack", "Autocast", "CloakResult", "CloakedPhoto", "DEFAULT_MODELS", "DSSIMTo",
           "FAWKES_V03_MODES", "FAWKES_V10_MODES", "HARDEST", "LOWKEY_SETTINGS", "PRECISIONS", "REGISTRY", "RELEASED",
           "V10_BOUND", "_cpu_has_native_bf16", "attack_extractor", "attack_precision", "bare_step_seconds",
           "choose_targets", "cloak", "cloak_photo", "default_mode", "dssim", "fawkes_v03_batch", "fawkes_v10_batch",
           "feature_gain", "get", "grayscale_projection", "lowkey_batch", "lowkey_features", "measure", "modes",
           "perceptual_distance", "quantise", "steps_of", "straight_through_quantise"]


def modes(attack: str) -> list[str]:
    return get(attack).modes


def default_mode(attack: str) -> str:
    return get(attack).default_mode


def steps_of(attack: str, mode: str, steps: int | None = None) -> int:
    """How many optimisation steps ``attack`` takes in ``mode``: ``steps`` when given (a shortened
    run: Fawkes keeps the mode's budget and learning rate; LowKey keeps its reach, steps x step
    size), else the mode's preset."""
    return get(attack).steps(mode, steps)
