"""The registry of cloaking tools: the one place an attack's name is looked up."""
from __future__ import annotations

from .common import Attack
from .fawkes_v03 import FawkesV03
from .fawkes_v10 import FawkesV10
from .lowkey import LowKey

REGISTRY: dict[str, Attack] = {a.name: a for a in (FawkesV03(), FawkesV10(), LowKey())}
ATTACKS = tuple(REGISTRY)  # in release order
# The attack whose cloaks transfer best to unseen faces: the trainer's further pairs are made with it.
HARDEST = LowKey.name


def get(attack: str) -> Attack:
    """The tool registered as ``attack``; an unknown name is an error that lists the known ones."""
    try:
        return REGISTRY[attack]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}") from None
