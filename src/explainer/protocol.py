"""The evaluation protocol of FaceCure's ``eval.py``.

Per identity, a seeded random 70/30 split of the photos: the 70 % is what the trainer
scrapes (the *gallery*, on which classifiers are trained), the 30 % is what the user is
later recognised from (the *probe*). A set of *protected* users has all of its gallery
photos replaced by cloaks; their clean gallery photos never reach the trainer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Indices into a face set: which photos are scraped (train) and which are probes (test).

    ``protected`` holds identity labels whose train photos are replaced by cloaks.
    """

    train: np.ndarray
    test: np.ndarray
    protected: np.ndarray

    def protected_train(self, labels: np.ndarray) -> np.ndarray:
        """Train indices of protected users: the photos that get cloaked."""
        return self.train[np.isin(labels[self.train], self.protected)]

    def protected_test(self, labels: np.ndarray) -> np.ndarray:
        return self.test[np.isin(labels[self.test], self.protected)]

    def unprotected_test(self, labels: np.ndarray) -> np.ndarray:
        return self.test[~np.isin(labels[self.test], self.protected)]


def split_identities(labels: np.ndarray, train_fraction: float = 0.7, seed: int = 0,
                     min_test: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per identity, a seeded random split of its photos into train and test indices.

    Each identity keeps at least one train photo and ``min_test`` test photos when it has
    enough photos. Results are sorted and independent of the order identities appear in.
    """
    labels = np.asarray(labels)
    train, test = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        # One generator per identity: adding or dropping another identity changes nothing here.
        rng = np.random.default_rng([seed, int(label)])
        idx = rng.permutation(idx)
        n_train = int(round(train_fraction * len(idx)))
        n_train = min(max(n_train, 1), max(len(idx) - min_test, 1))
        train.append(idx[:n_train])
        test.append(idx[n_train:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def choose_protected(labels: np.ndarray, n_protected: int, seed: int = 0,
                     candidates: np.ndarray | None = None) -> np.ndarray:
    """Draw ``n_protected`` identity labels (sorted) to protect, seeded."""
    pool = np.unique(labels) if candidates is None else np.asarray(candidates)
    if n_protected > len(pool):
        raise ValueError(f"Cannot protect {n_protected} users out of {len(pool)} identities.")
    rng = np.random.default_rng([seed, 7919])
    return np.sort(rng.choice(pool, size=n_protected, replace=False))


def make_split(labels: np.ndarray, n_protected: int = 1, train_fraction: float = 0.7, seed: int = 0,
               protected: np.ndarray | None = None) -> Split:
    """The protocol's split: 70/30 per identity, plus the protected users."""
    train, test = split_identities(labels, train_fraction, seed)
    if protected is None:
        protected = choose_protected(labels, n_protected, seed)
    return Split(train, test, np.sort(np.asarray(protected, dtype=np.int64)))


def gallery(split: Split, labels: np.ndarray, clean: np.ndarray, cloaked: dict[int, np.ndarray] | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the trainer scrapes: every train photo, with protected users' photos cloaked.

    ``clean`` is indexable by photo index (images or embeddings); ``cloaked`` maps a photo
    index of a protected user's train photo to its cloaked version. Returns (items, labels,
    photo indices). A protected user's train photo without a cloak is an error: its clean
    version must never reach the gallery.
    """
    cloaked = cloaked or {}
    protected_idx = set(split.protected_train(labels).tolist())
    missing = protected_idx - set(cloaked)
    if missing:
        raise ValueError(f"{len(missing)} protected training photo(s) have no cloak; "
                         "their clean versions must not enter the gallery.")
    items = [cloaked[i] if i in protected_idx else clean[i] for i in split.train]
    return np.stack(items), labels[split.train], split.train.copy()


# Profiles and the shared setting of every notebook ----------------------------------------------

PROFILES = {
    # Sizes per profile: identities, photos per identity, protected users.
    "ci": {"max_identities": 10, "max_images": 10, "n_protected": 2},
    "classroom": {"max_identities": 40, "max_images": 20, "n_protected": 5},
    "full": {"max_identities": None, "max_images": None, "n_protected": 10},
}


def profile_settings(profile: str) -> dict:
    """The sizes of a profile (``ci``, ``classroom`` or ``full``)."""
    try:
        return dict(PROFILES[profile])
    except KeyError:
        raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}") from None


@dataclass
class Setting:
    """What every experiment starts from: the photos, their canvases and the protocol split."""

    faces: "object"  # explainer.data.FaceSet
    canvases: np.ndarray  # (N, CANVAS, CANVAS, 3) uint8
    split: Split

    @property
    def labels(self) -> np.ndarray:
        return self.faces.labels

    @property
    def names(self) -> list[str]:
        return self.faces.names


def load_setting(source=None, profile: str = "classroom", seed: int = 0, n_protected: int | None = None,
                 max_identities: int | None = -1, cache=None, progress: bool = True) -> Setting:
    """Load the faces of ``source`` at the profile's size, align them (cached) and split them.

    ``max_identities=-1`` and ``n_protected=None`` take the profile's values.
    """
    from .data import load_faces
    from .faces import align_faceset
    sizes = profile_settings(profile)
    if max_identities == -1:
        max_identities = sizes["max_identities"]
    faces = load_faces(source, min_images=5, max_identities=max_identities, seed=seed, max_images=sizes["max_images"])
    canvases = align_faceset(faces, cache=cache, progress=progress)
    split = make_split(faces.labels, n_protected=sizes["n_protected"] if n_protected is None else n_protected, seed=seed)
    return Setting(faces, canvases, split)


def nn1_predict(gallery_emb: np.ndarray, gallery_labels: np.ndarray, probe_emb: np.ndarray) -> np.ndarray:
    """1-nearest-neighbour labels by cosine similarity (embeddings are unit vectors)."""
    return gallery_labels[np.argmax(probe_emb @ gallery_emb.T, axis=1)]


def clean_nn1_accuracy(emb: np.ndarray, labels: np.ndarray, split: Split) -> float:
    """1-NN accuracy with nobody protected: gallery = all train photos, probes = all test photos."""
    pred = nn1_predict(emb[split.train], labels[split.train], emb[split.test])
    return float(np.mean(pred == labels[split.test]))
