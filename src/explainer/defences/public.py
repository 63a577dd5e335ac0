"""What the trainer owns of other people: the public users' scraped photos it cloaks itself,
its cloaks of them, the further LowKey pairs, and the held-out users it chooses settings on."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import attacks, protocol
from ..profiles import resolve


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

    def refit(self) -> "PublicData":
        """The same photos with every public user training and nobody held out (``all`` keeps
        its order, so the cloaks of ``all`` pair with ``train``): what the defender trains its
        deployed model on once the held-out users have chosen the settings."""
        everyone = np.union1d(self.train_identities, self.validation_identities)
        return PublicData(self.all, self.validation[:0], everyone, self.validation_identities[:0])


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
                  progress: bool = True, cache=None, steps: int | None = None) -> attacks.CloakResult:
    """The defender's own cloaks of the public photos ``public.all`` (train then validation),
    with the profile's ``public_modes`` run for ``public_steps``, or for ``steps`` when given
    (cached; no iterates are kept)."""
    budget = resolve(profile).defender
    mode = budget.modes[attack]
    idx = public.all  # a targeted tool draws targets from every public user's scraped photos
    return attacks.cloak(setting.canvases[idx], attack, mode, users=setting.labels[idx],
                         pool=protocol.target_pool(setting), seed=seed, progress=progress, cache=cache,
                         steps=steps or budget.steps[attack])


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
    clean = setting.canvases[photos]
    for a in (clean, cloaked):
        a.setflags(write=False)  # new arrays, keyed on by the robust model's cache entries: hashed once
    return clean, setting.labels[photos], cloaked, source


def mirrored_pairs(clean: np.ndarray, labels: np.ndarray, cloaked: np.ndarray, source: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pair_data`'s pairs followed by their mirror images: a photo flipped left to right,
    with its cloak flipped the same way, is one more pair the trainer gets without running a
    tool (augmentation; faces are close to symmetric, the cloaks are not)."""
    flip = lambda canvases: canvases[:, :, ::-1]  # noqa: E731  (N, H, W, 3): W is the horizontal axis
    return (np.concatenate([clean, flip(clean)]), np.concatenate([labels, labels]),
            np.concatenate([cloaked, flip(cloaked)]), np.concatenate([source, source + len(clean)]))


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
