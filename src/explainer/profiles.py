"""Profiles: how large a run is, resolved once from its name (``ci``, ``classroom``, ``full``).

A profile says how many people and photos are scraped and protected, how the users cloak
(the attack's side), how much the trainer cloaks itself (the defence's budget) and how it
trains. ``resolve`` is the one place a profile name is looked up; everything below it takes
the resolved, frozen ``Profile``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Mapping


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class UsersAttack:
    """How the protected users cloak: each attack's mode, and its number of steps where the
    profile shortens the preset (``None``: the mode's preset)."""

    modes: Mapping[str, str]
    steps: Mapping[str, int | None]

    def steps_of(self, attack: str) -> int | None:
        return self.steps.get(attack)


@dataclass(frozen=True)
class DefenderBudget:
    """What the trainer cloaks itself: a share of each public user's scraped photos (at most
    ``per_identity``), with ``modes`` stopped after ``steps``; ``validation_fraction`` of the
    public users held out to choose its settings on; and LowKey cloaks of ``lowkey_share`` of
    each training user's other scraped photos, at most ``lowkey_per_identity`` in all (``None``:
    no cap). LowKey's cloaks are the hardest to pull back on unseen faces, and distinct clean
    photos teach that best."""

    share: float
    per_identity: int
    modes: Mapping[str, str]
    steps: Mapping[str, int]
    validation_fraction: float
    lowkey_share: float
    lowkey_per_identity: int | None


@dataclass(frozen=True)
class Training:
    """Epochs and learning rate of the robust extractor, epochs of the all-attack detector."""

    robust_epochs: int
    robust_lr: float
    detector_epochs: int


@dataclass(frozen=True)
class Profile:
    """A resolved profile: the data's size, the users' attack, the defender's budget, training."""

    name: str
    max_identities: int | None
    max_images: int | None
    n_protected: int
    users: UsersAttack
    defender: DefenderBudget
    training: Training
    # More users are protected until their test photos reach this (ORL has 3 test photos a person).
    min_protected_test_photos: int = 0

    def rows(self) -> list[dict]:
        """The profile as a short table for a notebook: one row per knob a reader cares about."""
        def text(v):
            return ", ".join(f"{k}: {x}" for k, x in v.items()) if isinstance(v, Mapping) else str(v)
        rows = [{"knob": "people scraped", "value": text(self.max_identities or "all")},
                {"knob": "photos per person", "value": text(self.max_images or "all")},
                {"knob": "protected users", "value": text(self.n_protected) + (
                    f" or more, until they have ≥ {self.min_protected_test_photos} test photos"
                    if self.min_protected_test_photos else "")},
                {"knob": "users' attack modes", "value": text(self.users.modes)}]
        for record, label in ((self.defender, "defender"), (self.training, "training")):
            rows += [{"knob": f"{label}: {f.name}", "value": text(getattr(record, f.name))} for f in fields(record)]
        return rows

    def as_dict(self) -> dict:
        def plain(v):
            return {k: plain(x) for k, x in v.items()} if isinstance(v, (dict, Mapping)) else v
        return plain(asdict(self, dict_factory=dict))


_ATTACK_MODES_STRONG = {"fawkes-v0.3": "high", "fawkes-v1.0": "high", "lowkey": "paper"}

PROFILES: Mapping[str, Profile] = _frozen({
    # ci keeps CI quick: weak modes and a 10-step LowKey, which do NOT reproduce the paper's
    # settings; the defender's own runs are shorter still.
    "ci": Profile(
        "ci", 10, 10, 1,
        UsersAttack(_frozen({"fawkes-v0.3": "min", "fawkes-v1.0": "low", "lowkey": "paper"}), _frozen({"lowkey": 10})),
        DefenderBudget(1.0, 2, _frozen({"fawkes-v0.3": "min", "fawkes-v1.0": "low", "lowkey": "paper"}),
                       _frozen({"fawkes-v0.3": 10, "fawkes-v1.0": 20, "lowkey": 5}), 0.25, 0.0, None),
        Training(2, 1e-3, 2)),
    # classroom: the users keep the tools' strongest presets (the paper's); the defender cloaks
    # 40 % of each public user's scraped photos with shortened runs of the same modes.
    "classroom": Profile(
        "classroom", 40, 20, 5,
        UsersAttack(_frozen(_ATTACK_MODES_STRONG), _frozen({"lowkey": 50})),
        DefenderBudget(0.4, 8, _frozen(_ATTACK_MODES_STRONG),
                       _frozen({"fawkes-v0.3": 50, "fawkes-v1.0": 40, "lowkey": 10}), 0.2, 1.0, None),
        # 9 epochs: bench/adaptive_pairs.py's rule on held-out public users (LFW; 6 and 12 tried)
        Training(9, 1e-3, 8), min_protected_test_photos=30),
    # full: every photo; the defender's runs are as long as the users'.
    "full": Profile(
        "full", None, None, 10,
        UsersAttack(_frozen(_ATTACK_MODES_STRONG), _frozen({"lowkey": 50})),
        DefenderBudget(1.0, 8, _frozen(_ATTACK_MODES_STRONG),
                       _frozen({"fawkes-v0.3": 500, "fawkes-v1.0": 150, "lowkey": 50}), 0.2, 1.0, 16),
        Training(6, 1e-3, 8), min_protected_test_photos=30),
})


def resolve(profile: "str | Profile") -> Profile:
    """The ``Profile`` of a name (``ci``, ``classroom``, ``full``); a ``Profile`` passes through.
    An unknown name is an error that lists the known ones."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}") from None
