"""What every experiment starts from: the setting, the users' cloaks, the defender's public
photos and cloaks, the adaptive model, and how a report is recorded. The one place the
shared prologue of the experiments lives."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .. import attacks, defences, models, protocol
from .. import results as store
from ..cache import Cache
from ..profiles import Profile, resolve


@dataclass(frozen=True)
class Scenario:
    """Who runs an experiment, and on what: the data, the profile, the seed, the cache and
    whether to show progress bars. Built once (a notebook's first code cell, the CLI) and handed
    to every experiment instead of five loose parameters. ``sizes`` is the resolved ``Profile``:
    an unknown profile name fails here, before any work."""

    source: object = None  # "orl" (default), "lfw" or a folder <identity>/<images>
    profile: str = "classroom"
    seed: int = 0
    cache: Cache = field(default_factory=Cache)
    progress: bool = True
    sizes: Profile = field(init=False, repr=False, compare=False)
    # the protected users' cloaks per attack, loaded from the cache once per scenario
    cloaks: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "sizes", resolve(self.profile))
        object.__setattr__(self, "profile", self.sizes.name)

    @functools.cached_property
    def setting(self) -> protocol.Setting:
        """The faces, the people and who is protected (cached on disk; loaded once per scenario)."""
        return protocol.load_setting(self.source, self.profile, self.seed, progress=self.progress, cache=self.cache)

    @functools.cached_property
    def outside(self) -> protocol.Setting | None:
        """The same world with the protected users swapped for people from outside the setting
        (``protocol.swap_protected``; ``None`` when the data has too few): users no setting was
        ever chosen on."""
        return protocol.swap_protected(self.setting, self.source, self.profile, self.seed, self.cache, self.progress)

    def record(self, name: str, run):
        """Record ``run``'s report for notebook 07 (``explainer.results``) and return the run."""
        store.record(name, run.to_json(), self.source, self.profile, self.seed)
        return run


def common_settings(scenario: Scenario) -> dict:
    """What every report's ``settings`` opens with: the data, its size and the protected test photos."""
    setting = scenario.setting
    return {"data": setting.faces.source, "profile": scenario.profile, "seed": scenario.seed,
            "identities": setting.faces.n_identities, "photos": len(setting.faces),
            "protected_users": int(len(setting.split.protected)),
            "protected_test_photos": int(len(setting.split.protected_test(setting.labels)))}


def evaluation_models() -> list[str]:
    """The offline extractors, in publication order (online ones join when their weights are present)."""
    return [n for n in models.model_names() if models.availability(n)[0]]


def protected_cloaks(scenario: Scenario, attack: str, outside: bool = False, iterates: bool = False
                     ) -> attacks.CloakResult:
    """Cloaks of every protected user's training photos, with the profile's mode (cached).

    About ten intermediate iterates are recorded, so notebooks can show the cloaks moving; every
    experiment asks for the same cloaks, so they are computed once and shared through the cache,
    and read from it once per scenario. The iterates are read only when ``iterates`` asks for them.
    ``outside``: the protected users of ``scenario.outside``.
    """
    key = (attack, "outside") if outside else attack
    found = scenario.cloaks.get(key)
    if found is not None and (found.iterates is not None or not iterates):
        return found
    setting, users = scenario.outside if outside else scenario.setting, scenario.sizes.users
    mode = users.modes[attack]
    steps = users.steps_of(attack)
    record_every = max(1, attacks.steps_of(attack, mode, steps) // 10)
    split, labels = setting.split, setting.labels
    idx = split.protected_train(labels)
    # a targeted tool draws targets from the public users' scraped photos
    scenario.cloaks[key] = attacks.cloak(
        setting.canvases[idx], attack, mode, users=labels[idx], pool=protocol.target_pool(setting), seed=scenario.seed,
        record_every=record_every, progress=scenario.progress, cache=scenario.cache, steps=steps,
        load_iterates=iterates)
    return scenario.cloaks[key]


def cloaked_setting(scenario: Scenario, attack_names=attacks.ATTACKS
                    ) -> tuple[protocol.Setting, dict[str, attacks.CloakResult]]:
    """What every experiment after 01 starts from: the setting and the protected users' cloaks."""
    return scenario.setting, {a: protected_cloaks(scenario, a) for a in attack_names}


def defender_data(scenario: Scenario, attack_names=attacks.ATTACKS
                  ) -> tuple["defences.PublicData", dict[str, attacks.CloakResult]]:
    """The public users' photos the defender cloaks, and its cloaks of them per attack (cached)."""
    setting, profile, seed = scenario.setting, scenario.profile, scenario.seed
    public = defences.profile_public_data(setting, profile, seed)
    return public, {a: defences.public_cloaks(setting, public, a, profile, seed, scenario.progress, scenario.cache)
                    for a in attack_names}


def adaptive_model(scenario: Scenario, public: "defences.PublicData", public_cloaks: dict[str, attacks.CloakResult],
                   recipe: str = "align", start: str = defences.STARTS[-1], lowkey_share: float | None = None,
                   epochs: int | None = None, lr: float | None = None, mirrored: bool = False,
                   flip: bool = False, train_seed: int | None = None) -> "defences.RobustModel":
    """A robust FaceNet trained on the defender's cloaks of ``public.train`` and, when it has LowKey
    among ``public_cloaks``, the further LowKey pairs (``defences.lowkey_extra``), for
    ``epochs`` at ``lr`` (cached: notebooks 02, 04 and 05 share it; notebook 02 deploys the one
    trained on ``public.refit()``). ``lowkey_share``, ``epochs``
    and ``lr`` default to the profile's ``public_lowkey_share``, ``robust_epochs`` and ``robust_lr``
    (``bench/adaptive_pairs.py`` varies them). ``mirrored`` adds every pair's mirror image
    (``defences.mirrored_pairs``); ``flip`` mirrors pairs at random as it trains
    (``defences.train_robust``). ``train_seed`` (default: the scenario's) seeds the training
    alone: the same pairs, another draw of batches, for the spread of one recipe."""
    setting, training, seed, cache, progress = (scenario.setting, scenario.sizes.training, scenario.seed,
                                                scenario.cache, scenario.progress)
    # the model the story follows (notebooks 02, 04, 05) also records how it moves a few photos
    watch = watch_set(scenario, tuple(public_cloaks))[0] if (recipe, start) == ("align", defences.STARTS[-1]) else None
    extra = defences.lowkey_extra(setting, public, scenario.profile, seed,
                                  lowkey_share if attacks.HARDEST in public_cloaks else 0, progress, cache)
    clean, clean_labels, cloaked, source_idx = defences.pair_data(setting, public, public_cloaks, extra)
    if mirrored:
        clean, clean_labels, cloaked, source_idx = defences.mirrored_pairs(clean, clean_labels, cloaked, source_idx)
    return defences.train_robust(clean, cloaked, source_idx, clean_labels, recipe, start, "facenet-keras",
                                 epochs=epochs or training.robust_epochs, lr=lr or training.robust_lr,
                                 seed=seed if train_seed is None else train_seed,
                                 trained_on=tuple(public_cloaks), cache=cache, progress=progress, watch=watch, flip=flip)


WATCH_OTHERS, WATCH_PHOTOS = 8, 4  # other people shown around the watched user, photos each


def watch_set(scenario: Scenario, attack_names=attacks.ATTACKS) -> tuple[np.ndarray, dict]:
    """The photos whose embeddings the adaptive model records as it trains (notebook 02's
    animation): the first protected user's clean photos and every attack's cloaks of them, and
    a few clean photos of a few other people for context, for the attacks ``attack_names``. Returns (canvases, parts) where
    ``parts`` maps "others", "user clean" and each attack to index arrays into the canvases,
    and "other labels" to the others' identities."""
    setting = scenario.setting
    split, labels = setting.split, setting.labels
    user = int(split.protected[0])
    scraped = split.protected_train(labels)
    mine = labels[scraped] == user
    user_clean = np.flatnonzero(labels == user)
    others = [i for c in np.unique(labels) if c != user and c not in split.protected
              for i in np.flatnonzero(labels == c)[:WATCH_PHOTOS]][:WATCH_OTHERS * WATCH_PHOTOS]
    groups = {"others": setting.canvases[others], "user clean": setting.canvases[user_clean],
              **{a: protected_cloaks(scenario, a).cloaked[mine] for a in attack_names}}
    ends = np.cumsum([len(g) for g in groups.values()])
    parts = {name: np.arange(end - len(g), end) for (name, g), end in zip(groups.items(), ends)}
    parts["other labels"] = labels[others]
    return np.concatenate(list(groups.values())), parts


def original_and_robust(robust: list["defences.RobustModel"], cache=None) -> dict:
    """``canvases -> unit embeddings`` by name: the original FaceNet, then each robust model (the
    robust models' computed together, ``defences.embed_jointly``)."""
    base = "facenet-keras"
    embedders = {f"{base} (original)": lambda c: models.embeddings(base, c, cache, progress=False)}
    embedders.update(zip([m.name for m in robust], defences.joint_embedders(robust, cache)))
    return embedders


def embedder(name: str, cache=None):
    """``canvases -> embeddings`` for a zoo model, or the reason it cannot run here (offline)."""
    ok, where = models.availability(name)
    if not ok:
        return None, where
    if not models.model_info(name).offline:  # downloaded weights may still fail to load
        try:
            models.load_model(name)
        except models.WeightsUnavailable as exc:
            return None, str(exc)
    return (lambda c: models.embeddings(name, c, cache, progress=False)), where


def rounded(metrics: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def cloak_workload(source=None, profile: str = "classroom", seed: int = 0) -> list[dict]:
    """Every cloak the notebooks of a profile compute cold: attack, mode, steps and photo count,
    for the protected users (notebook 01 on), the defender's public photos (02 on; with the
    profile's further LowKey pairs, ``public-lowkey``) and the extra modes of notebook 01's viewer. What the cold preparation time is made of."""
    setting = protocol.load_setting(source, profile, seed, progress=False)
    resolved = resolve(profile)
    users, budget = resolved.users, resolved.defender
    n_protected = len(setting.split.protected_train(setting.labels))
    public = defences.profile_public_data(setting, profile, seed)
    n_extra = len(defences.lowkey_extra_photos(setting, public, profile, seed))
    rows = []
    for a in attacks.ATTACKS:
        for role, n, mode, steps in (("protected", n_protected, users.modes[a], users.steps_of(a)),
                                     ("public", len(public.all), budget.modes[a], budget.steps[a])):
            rows.append({"attack": a, "role": role, "mode": mode, "steps": attacks.steps_of(a, mode, steps),
                         "photos": n})
    if n_extra:  # defences.lowkey_extra
        mode = budget.modes[attacks.HARDEST]
        rows.append({"attack": attacks.HARDEST, "role": "public-lowkey", "mode": mode,
                     "steps": attacks.steps_of(attacks.HARDEST, mode, budget.steps[attacks.HARDEST]), "photos": n_extra})
    if profile != "ci":  # viewer_results(extra_modes=True): one photo in each other mode
        for a, wanted in VIEWER_EXTRA_MODES.items():
            for mode in wanted:
                if mode != users.modes[a]:
                    rows.append({"attack": a, "role": "viewer", "mode": mode, "steps": attacks.steps_of(a, mode), "photos": 1})
    return rows


# The other Fawkes modes notebook 01's viewer shows on one photo (up to ``mid``/``high``: cheap)
VIEWER_EXTRA_MODES = {"fawkes-v0.3": ("min", "low", "mid"), "fawkes-v1.0": ("low", "mid", "high")}
