"""The evaluation protocol of FaceCure's ``eval.py``.

Per identity, a seeded random 70/30 split of the photos: the 70 % is what the trainer
scrapes (the *gallery*, on which classifiers are trained), the 30 % is what the user is
later recognised from (the *probe*). A set of *protected* users has all of its gallery
photos replaced by cloaks; their clean gallery photos never reach the trainer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .profiles import Profile, resolve


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
               protected: np.ndarray | None = None, min_protected_test: int = 0) -> Split:
    """The protocol's split: 70/30 per identity, plus the protected users.

    With ``min_protected_test``, more users are protected (drawn in a seeded order, after the
    first ``n_protected``) until their test photos number at least that many: on a dataset
    with few photos per person a protection rate then still rests on enough photos. The first
    ``n_protected`` users are the same with or without it.
    """
    train, test = split_identities(labels, train_fraction, seed)
    if protected is None:
        protected = choose_protected(labels, n_protected, seed)
        test_photos = np.bincount(labels[test], minlength=int(labels.max()) + 1)
        rest = np.setdiff1d(np.unique(labels), protected)
        extra = np.random.default_rng([seed, 104729]).permutation(rest)
        while test_photos[protected].sum() < min_protected_test and len(extra):
            protected, extra = np.append(protected, extra[0]), extra[1:]
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


# The shared setting of every notebook ------------------------------------------------------------

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


def target_pool(setting: "Setting") -> tuple[np.ndarray, np.ndarray]:
    """(canvases, labels) of the public users' scraped photos: where Fawkes v0.3 picks targets."""
    public = setting.split.train[~np.isin(setting.labels[setting.split.train], setting.split.protected)]
    return setting.canvases[public], setting.labels[public]


def load_setting(source=None, profile: "str | Profile" = "classroom", seed: int = 0, n_protected: int | None = None,
                 max_identities: int | None = -1, cache=None, progress: bool = True) -> Setting:
    """Load the faces of ``source`` at the profile's size, align them (cached) and split them.

    ``max_identities=-1`` and ``n_protected=None`` take the profile's values.
    """
    from .data import load_faces
    from .faces import align_faceset
    profile = resolve(profile)
    if max_identities == -1:
        max_identities = profile.max_identities
    faces = load_faces(source, min_images=5, max_identities=max_identities, seed=seed, max_images=profile.max_images)
    canvases = align_faceset(faces, cache=cache, progress=progress)
    canvases.setflags(write=False)  # shared by every experiment; read-only also lets the cache remember its hash
    split = make_split(faces.labels, n_protected=profile.n_protected if n_protected is None else n_protected, seed=seed,
                       min_protected_test=profile.min_protected_test_photos if n_protected is None else 0)
    return Setting(faces, canvases, split)


def nn1_predict(gallery_emb: np.ndarray, gallery_labels: np.ndarray, probe_emb: np.ndarray) -> np.ndarray:
    """1-nearest-neighbour labels by cosine similarity (embeddings are unit vectors)."""
    return gallery_labels[np.argmax(probe_emb @ gallery_emb.T, axis=1)]


def clean_nn1_accuracy(emb: np.ndarray, labels: np.ndarray, split: Split) -> float:
    """1-NN accuracy with nobody protected: gallery = all train photos, probes = all test photos."""
    pred = nn1_predict(emb[split.train], labels[split.train], emb[split.test])
    return float(np.mean(pred == labels[split.test]))


# Classifiers on embeddings and the evaluation of FaceCure's eval.py -----------------------------

CLASSIFIERS = ("1nn", "linear", "e2e")


def wilson_interval(errors: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial rate (test sets are small: a normal interval would mislead)."""
    if n == 0:
        return (0.0, 1.0)
    p = errors / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def fit_predict(classifier: str, gallery_emb: np.ndarray, gallery_labels: np.ndarray, probe_emb: np.ndarray,
                seed: int = 0, cache=None) -> np.ndarray:
    """Train ``classifier`` ("1nn" or "linear") on gallery embeddings and label the probes.

    "linear" is StandardScaler + LogisticRegression (scikit-learn), as in FaceCure; its
    predictions are cached (dozens of fits make a notebook's second run slow otherwise). The
    end-to-end variant needs images, not embeddings: see ``explainer.defences.e2e_predict``.
    """
    if classifier == "1nn":
        return nn1_predict(gallery_emb, gallery_labels, probe_emb)
    if classifier == "linear":
        from .cache import Cache

        def compute():
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
            clf.fit(gallery_emb, gallery_labels)
            return {"pred": clf.predict(probe_emb)}
        cache = cache if cache is not None else Cache()
        return cache.get_or_compute("linear", [gallery_emb, gallery_labels, probe_emb, seed], compute)["pred"]
    raise ValueError(f"Unknown classifier {classifier!r}; choose one of {', '.join(CLASSIFIERS)}")


@dataclass
class Evaluation:
    """What the protocol reports for one model, classifier and set of cloaks."""

    protection_rate: float  # error on the protected users' clean test photos
    protection_ci: tuple[float, float]
    unprotected_error: float
    per_user: dict[int, dict]  # label -> {"rate", "ci", "n"}
    predictions: np.ndarray  # predicted labels of split.test, in order

    def as_dict(self) -> dict:
        return {"protection_rate": self.protection_rate, "protection_ci": list(self.protection_ci),
                "unprotected_error": self.unprotected_error,
                "per_user": {int(k): v for k, v in self.per_user.items()}}


def score(split: Split, labels: np.ndarray, predictions: np.ndarray) -> Evaluation:
    """Protection rate (error on protected users' probes), unprotected error, per-user rates with CIs."""
    truth = labels[split.test]
    wrong = predictions != truth
    protected = np.isin(truth, split.protected)
    n_prot = int(protected.sum())
    per_user = {}
    for user in split.protected:
        mine = truth == user
        errs = int(wrong[mine].sum())
        per_user[int(user)] = {"rate": errs / max(int(mine.sum()), 1), "ci": wilson_interval(errs, int(mine.sum())),
                               "n": int(mine.sum())}
    errs = int(wrong[protected].sum())
    return Evaluation(errs / max(n_prot, 1), wilson_interval(errs, n_prot),
                      float(wrong[~protected].mean()) if (~protected).any() else float("nan"), per_user, predictions)


def evaluate_embeddings(split: Split, labels: np.ndarray, clean_emb: np.ndarray, cloaked_emb: dict[int, np.ndarray],
                        classifier: str = "1nn", seed: int = 0) -> Evaluation:
    """The protocol on embeddings: gallery = train photos (protected ones cloaked), probes = clean test photos."""
    items, gallery_labels, _ = gallery(split, labels, clean_emb, cloaked_emb)
    predictions = fit_predict(classifier, items, gallery_labels, clean_emb[split.test], seed)
    return score(split, labels, predictions)


def clean_error(split: Split, labels: np.ndarray, clean_emb: np.ndarray, classifier: str = "1nn", seed: int = 0) -> float:
    """Error on all test photos when nobody is protected (every gallery photo clean)."""
    predictions = fit_predict(classifier, clean_emb[split.train], labels[split.train], clean_emb[split.test], seed)
    return float(np.mean(predictions != labels[split.test]))


def evaluate_one_at_a_time(split: Split, labels: np.ndarray, clean_emb: np.ndarray, cloaked_emb: dict[int, np.ndarray],
                           classifier: str = "1nn", seed: int = 0) -> Evaluation:
    """FaceCure's way: one protected user at a time (the others' photos stay clean), rates pooled."""
    truth = labels[split.test]
    predictions = None
    for user in split.protected:
        single = Split(split.train, split.test, np.array([user]))
        mine = {i: e for i, e in cloaked_emb.items() if labels[i] == user}
        run = evaluate_embeddings(single, labels, clean_emb, mine, classifier, seed).predictions
        # unprotected users' predictions come from the run with the last user cloaked
        predictions = run.copy() if predictions is None else predictions
        predictions[truth == user] = run[truth == user]
        unprotected = ~np.isin(truth, split.protected)
        predictions[unprotected] = run[unprotected]
    return score(split, labels, predictions)


E2E_VERSION = 1  # part of the cached predictions' key: bump when the fine-tuning changes


def e2e_predict(model_name: str, gallery_canvases: np.ndarray, gallery_labels: np.ndarray, probe_canvases: np.ndarray,
                epochs: int = 10, lr: float = 1e-3, seed: int = 0, cache=None) -> np.ndarray:
    """The end-to-end classifier: fine-tune the extractor's last layers plus a softmax head on the gallery.

    Sized for a CPU: the frozen trunk's features are computed once (cached), then the last
    layers (``models.head_split``) and a linear softmax layer train for ``epochs`` epochs
    with Adam; BatchNorm keeps its statistics. Returns predicted labels of the probes
    (cached, so a notebook's second run does not train again).
    """
    from .cache import Cache
    cache = cache if cache is not None else Cache()
    key = [E2E_VERSION, model_name, gallery_canvases, gallery_labels, probe_canvases, epochs, lr, seed]
    return cache.get_or_compute("e2e", key, lambda: {"pred": _e2e_train_predict(
        model_name, gallery_canvases, gallery_labels, probe_canvases, epochs, lr, seed, cache)})["pred"]


def _e2e_train_predict(model_name, gallery_canvases, gallery_labels, probe_canvases, epochs, lr, seed, cache) -> np.ndarray:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from . import models as zoo
    from .tensors import to_tensor
    model = zoo.load_model(model_name, "cpu")
    trunk, head = zoo.head_split(model)

    def features(canvases):
        # Cached in chunks of 8 photos: a gallery that differs from the clean one only in the
        # protected users' cloaks recomputes the chunks that hold them, not the whole gallery.
        def chunk_features(chunk):
            with torch.no_grad():
                return {"f": trunk(to_tensor(chunk)).numpy()}
        chunks = [canvases[i:i + 8] for i in range(0, len(canvases), 8)]
        return torch.from_numpy(np.concatenate([cache.get_or_compute("trunk-features", [model_name, c],
                                                                     lambda c=c: chunk_features(c))["f"] for c in chunks]))

    train_f, probe_f = features(gallery_canvases), features(probe_canvases)
    classes, y = np.unique(gallery_labels, return_inverse=True)
    y = torch.from_numpy(y)
    torch.manual_seed(seed)
    head.eval()  # fine-tune weights, keep BatchNorm statistics

    def embed(f):
        return F.normalize(head(f).flatten(1), dim=1)

    # A cosine softmax layer started at the class centroids ("imprinting"), so a few CPU epochs
    # fine-tune from a sensible classifier rather than from random weights.
    with torch.no_grad():
        start = embed(train_f)
        centroids = torch.stack([start[y == c].mean(0) for c in range(len(classes))])
    weight = nn.Parameter(F.normalize(centroids, dim=1))
    scale = 30.0
    # The pre-trained layers move slowly; the new classifier faster.
    opt = torch.optim.Adam([{"params": list(head.parameters()), "lr": lr * 0.1}, {"params": [weight], "lr": lr}])
    gen = torch.Generator().manual_seed(seed)

    def logits(f):
        return scale * embed(f) @ F.normalize(weight, dim=1).T

    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=gen).split(32):
            loss = F.cross_entropy(logits(train_f[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return classes[logits(probe_f).argmax(1).numpy()]


# The two groups of protected users notebook 02 scores: the setting's own, and as many people
# from outside it (``swap_protected``), whom no setting was ever chosen on.
SETTING_USERS, OUTSIDE_USERS = "the setting's protected users", "people outside the setting"


def swap_protected(setting: Setting, source=None, profile: "str | Profile" = "classroom", seed: int = 0, cache=None,
                   progress: bool = True) -> Setting | None:
    """The same world with its protected users swapped for as many people from outside it: the
    source's identities that ``setting`` does not hold (at least five photos each, at the
    profile's photos per person), drawn with ``seed``. Their photos are appended after the
    setting's, so every index of the setting still names the same photo; the old protected users
    stay in ``faces`` but leave the split. The public users, their photos and their split are
    unchanged. ``None`` when the source has too few people outside the setting.

    Whatever was chosen while the setting's protected users' results were visible (a recipe's
    settings, a threshold) never saw these people: their figures are the honest ones."""
    from .data import FaceSet, load_faces
    from .faces import align_faceset
    profile = resolve(profile)
    everyone = load_faces(source, min_images=5, max_identities=None, seed=seed, max_images=profile.max_images)
    inside = set(setting.names)
    outside = [i for i, name in enumerate(everyone.names) if name not in inside]
    n = len(setting.split.protected)
    if len(outside) < n:
        return None
    chosen = np.sort(np.random.default_rng([seed, 7877]).choice(outside, size=n, replace=False))
    photos = np.flatnonzero(np.isin(everyone.labels, chosen))
    new = everyone.subset(photos)
    offset = setting.faces.n_identities
    new_labels = offset + np.searchsorted(chosen, new.labels)
    faces = FaceSet(list(setting.faces.images) + new.images, np.concatenate([setting.labels, new_labels]),
                    list(setting.names) + [everyone.names[i] for i in chosen], list(setting.faces.paths) + new.paths,
                    setting.faces.source)
    canvases = np.concatenate([setting.canvases, align_faceset(new, cache=cache, progress=progress)])
    canvases.setflags(write=False)
    train, test = split_identities(new_labels, seed=seed)
    old = setting.split
    keep = lambda idx: idx[~np.isin(setting.labels[idx], old.protected)]  # noqa: E731
    n_old = len(setting.labels)
    split = Split(np.concatenate([keep(old.train), n_old + train]), np.concatenate([keep(old.test), n_old + test]),
                  offset + np.arange(n, dtype=np.int64))
    return Setting(faces, canvases, split)
