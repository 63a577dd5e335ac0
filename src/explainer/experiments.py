"""The paper's experiments as functions that the notebooks and ``explainer experiment`` share.

Each experiment loads the setting of a profile, computes what it needs through the cache
(cloaks, embeddings, trained models) and returns a run object whose ``to_json()`` is what
``explainer experiment NAME --json`` prints: ``{"results": [...], "settings": {...}, "paper": [...]}``,
where ``paper`` lists the figures the paper's authors reported for the same experiment, each with
its value and source (``explainer.paper``). Each run also records its report
(``explainer.results.record``), which notebook 07 reads back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import attacks, defences, models, paper, protocol, results as store
from .maps import umap_coords
from .profiles import resolve


def _common_settings(setting: protocol.Setting, profile: str, seed: int) -> dict:
    """What every report's ``settings`` opens with: the data, its size and the protected test photos."""
    return {"data": setting.faces.source, "profile": profile, "seed": seed,
            "identities": setting.faces.n_identities, "photos": len(setting.faces),
            "protected_users": int(len(setting.split.protected)),
            "protected_test_photos": int(len(setting.split.protected_test(setting.labels)))}


def _recorded(name: str, run, source):
    """Record ``run``'s report for notebook 07 (``explainer.results``) and return the run."""
    store.record(name, run.to_json(), source, run.profile, run.seed)
    return run


def evaluation_models() -> list[str]:
    """The offline extractors, in publication order (online ones join when their weights are present)."""
    return [n for n in models.model_names() if models.availability(n)[0]]


def protected_cloaks(setting: protocol.Setting, attack: str, profile: str, seed: int = 0,
                     progress: bool = True, cache=None) -> attacks.CloakResult:
    """Cloaks of every protected user's training photos, with the profile's mode (cached).

    About ten intermediate iterates are kept, so notebooks can show the cloaks moving; every
    experiment asks for the same ones, so they are computed once and shared through the cache.
    """
    users = resolve(profile).users
    mode = users.modes[attack]
    steps = users.steps_of(attack)
    record_every = max(1, attacks.steps_of(attack, mode, steps) // 10)
    split, labels = setting.split, setting.labels
    idx = split.protected_train(labels)
    kwargs = {}
    if attack == "fawkes-v0.3":  # targets come from the public users' scraped photos
        kwargs = {"users": labels[idx], "pool": protocol.target_pool(setting)}
    return attacks.cloak(setting.canvases[idx], attack, mode, seed=seed, record_every=record_every,
                         progress=progress, cache=cache, steps=steps, **kwargs)


def cloaked_setting(source, profile: str, seed: int = 0, attack_names=attacks.ATTACKS, progress: bool = True,
                    cache=None) -> tuple[protocol.Setting, dict[str, attacks.CloakResult]]:
    """What every experiment after 01 starts from: the setting and the protected users' cloaks."""
    setting = protocol.load_setting(source, profile, seed, progress=progress, cache=cache)
    return setting, {a: protected_cloaks(setting, a, profile, seed, progress, cache) for a in attack_names}


@dataclass
class PoisoningRun:
    """Experiment 1: cloaks fool the model they were made against."""

    setting: protocol.Setting
    profile: str
    seed: int
    cloaks: dict[str, attacks.CloakResult]
    results: list[dict]
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"results": self.results, "settings": self.settings, "paper": paper.entries("poisoning")}


def run_poisoning(source=None, profile: str = "classroom", seed: int = 0, eval_models: list[str] | None = None,
                  classifiers: tuple[str, ...] = protocol.CLASSIFIERS, attack_names: tuple[str, ...] = attacks.ATTACKS,
                  progress: bool = True, cache=None) -> PoisoningRun:
    """Cloak the protected users' scraped photos with each attack; evaluate every model and classifier.

    For each (attack, model, classifier): the protection rate (error on protected users' clean
    test photos, with a Wilson interval), the unprotected users' error, and the clean error
    with nobody protected. ``attacked`` says whether the cloak was made against that model.
    """
    start = time.perf_counter()
    setting = protocol.load_setting(source, profile, seed, progress=progress, cache=cache)
    split, labels = setting.split, setting.labels
    eval_models = eval_models or evaluation_models()
    protected_idx = split.protected_train(labels)
    cloaks = {a: protected_cloaks(setting, a, profile, seed, progress, cache) for a in attack_names}
    results, clean_errors = [], {}
    for model_name in eval_models:
        clean_emb = models.embeddings(model_name, setting.canvases, cache, progress=progress)
        for classifier in classifiers:
            if classifier == "e2e":
                clean_pred = protocol.e2e_predict(model_name, setting.canvases[split.train], labels[split.train],
                                                  setting.canvases[split.test], seed=seed, cache=cache)
                clean_errors[model_name, classifier] = float(np.mean(clean_pred != labels[split.test]))
            else:
                clean_errors[model_name, classifier] = protocol.clean_error(split, labels, clean_emb, classifier, seed)
        for attack_name, result in cloaks.items():
            cloak_emb = models.embeddings(model_name, result.cloaked, cache, progress=False)
            cloaked = dict(zip(protected_idx.tolist(), cloak_emb))
            for classifier in classifiers:
                if classifier == "e2e":
                    gallery_canvases = setting.canvases.copy()
                    gallery_canvases[protected_idx] = result.cloaked
                    pred = protocol.e2e_predict(model_name, gallery_canvases[split.train], labels[split.train],
                                                setting.canvases[split.test], seed=seed, cache=cache)
                    evaluation = protocol.score(split, labels, pred)
                else:
                    evaluation = protocol.evaluate_embeddings(split, labels, clean_emb, cloaked, classifier, seed)
                results.append({"attack": attack_name, "mode": result.mode, "model": model_name,
                                "attacked": model_name in result.models, "classifier": classifier,
                                "protection_rate": round(evaluation.protection_rate, 4),
                                "protection_ci": [round(v, 4) for v in evaluation.protection_ci],
                                "unprotected_error": round(evaluation.unprotected_error, 4),
                                "clean_error": round(clean_errors[model_name, classifier], 4),
                                "per_user": {setting.names[k]: round(v["rate"], 4)
                                             for k, v in evaluation.per_user.items()},
                                "dssim_mean": round(float(result.dssim.mean()), 5),
                                "linf_max_255": int(round(float(result.linf.max()) * 255))})
    users = resolve(profile).users
    run_settings = {**_common_settings(setting, profile, seed),
                    "protected": [setting.names[i] for i in split.protected],
                    "protected_train_photos": int(len(protected_idx)),
                    "modes": {a: users.modes[a] for a in attack_names}, "lowkey_steps": users.steps["lowkey"],
                    "attack_models": {a: list(r.models) for a, r in cloaks.items()},
                    "attack_precision": sorted({r.precision for r in cloaks.values()}),
                    "perceptual": {a: r.perceptual for a, r in cloaks.items() if r.perceptual},
                    "seconds": round(time.perf_counter() - start, 1)}
    return _recorded("poisoning", PoisoningRun(setting, profile, seed, cloaks, results, run_settings), source)


@dataclass
class AdaptiveRun:
    """Experiment 2: a trainer with the cloaking tools trains a robust extractor; protection collapses."""

    setting: protocol.Setting
    profile: str
    seed: int
    public: "defences.PublicData"
    cloaks: dict[str, attacks.CloakResult]  # the protected users' cloaks
    public_cloaks: dict[str, attacks.CloakResult]
    robust: dict[str, "defences.RobustModel"]  # the selected model per recipe
    results: list[dict]
    candidates: list[dict]
    clean_photo: list[dict]
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"results": self.results, "candidates": self.candidates, "one_clean_photo": self.clean_photo,
                "settings": self.settings, "paper": paper.entries("adaptive")}


def defender_data(setting: protocol.Setting, profile: str, seed: int = 0, attack_names=attacks.ATTACKS,
                  progress: bool = True, cache=None) -> tuple["defences.PublicData", dict[str, attacks.CloakResult]]:
    """The public users' photos the defender cloaks, and its cloaks of them per attack (cached)."""
    public = defences.profile_public_data(setting, profile, seed)
    return public, {a: defences.public_cloaks(setting, public, a, profile, seed, progress, cache) for a in attack_names}


def adaptive_model(setting: protocol.Setting, public: "defences.PublicData", public_cloaks: dict[str, attacks.CloakResult],
                   profile: str, recipe: str = "align", start: str = defences.STARTS[-1], seed: int = 0,
                   progress: bool = True, cache=None, lowkey_share: float | None = None, epochs: int | None = None,
                   lr: float | None = None) -> "defences.RobustModel":
    """A robust FaceNet trained on the defender's cloaks of ``public.train`` and, when it has LowKey
    among ``public_cloaks``, the further LowKey pairs (``defences.lowkey_extra``), for
    ``epochs`` at ``lr`` (cached: notebooks 02, 04 and 05 share it). ``lowkey_share``, ``epochs``
    and ``lr`` default to the profile's ``public_lowkey_share``, ``robust_epochs`` and ``robust_lr``
    (``bench/adaptive_pairs.py`` varies them)."""
    training = resolve(profile).training
    extra = defences.lowkey_extra(setting, public, profile, seed, lowkey_share if "lowkey" in public_cloaks else 0,
                                  progress, cache)
    clean, clean_labels, cloaked, source_idx = defences.pair_data(setting, public, public_cloaks, extra)
    return defences.train_robust(clean, cloaked, source_idx, clean_labels, recipe, start, "facenet-keras",
                                 epochs=epochs or training.robust_epochs, lr=lr or training.robust_lr, seed=seed,
                                 trained_on=tuple(public_cloaks), cache=cache, progress=progress)


def _protocol_rows(setting, clean_emb, protected_emb: dict[str, dict], classifiers, seed) -> dict:
    """Per (attack, classifier): protection rate and CI, and the clean accuracy (nobody protected)."""
    split, labels = setting.split, setting.labels
    out = {}
    for classifier in classifiers:
        clean_acc = 1.0 - protocol.clean_error(split, labels, clean_emb, classifier, seed)
        for attack_name, cloaked in protected_emb.items():
            ev = protocol.evaluate_embeddings(split, labels, clean_emb, cloaked, classifier, seed)
            out[attack_name, classifier] = {"protection_rate": ev.protection_rate, "protection_ci": ev.protection_ci,
                                            "clean_accuracy": clean_acc}
    return out


def run_adaptive(source=None, profile: str = "classroom", seed: int = 0, recipes: tuple[str, ...] = defences.RECIPES,
                 starts: tuple[str, ...] = defences.STARTS, classifiers: tuple[str, ...] = ("1nn", "linear"),
                 attack_names: tuple[str, ...] = attacks.ATTACKS, ablations: bool = True, progress: bool = True,
                 cache=None) -> AdaptiveRun:
    """Train robust FaceNets on the defender's own cloaks of public users; rerun the protocol.

    For each recipe, every start stage in ``starts`` is trained and scored on held-out public
    users (``defences.validation_scores``); the one ``defences.select`` picks is the recipe's
    result. ``candidates`` holds every model tried (what fails as well as what works) and, with
    ``ablations``, a model trained without LowKey's cloaks. ``one_clean_photo`` reruns the
    protocol with one unperturbed photo of each protected user in the gallery.
    """
    start_time = time.perf_counter()
    base = "facenet-keras"
    resolved = resolve(profile)
    setting, cloaks = cloaked_setting(source, profile, seed, attack_names, progress, cache)
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    public, pub_cloaks = defender_data(setting, profile, seed, attack_names, progress, cache)
    n_train = len(public.train)

    def scores(embed) -> tuple[dict, dict]:
        clean_emb = embed(setting.canvases)
        protected_emb = {a: dict(zip(protected_idx.tolist(), embed(c.cloaked))) for a, c in cloaks.items()}
        test = _protocol_rows(setting, clean_emb, protected_emb, classifiers, seed)
        val = {a: defences.validation_scores(setting, public, clean_emb, embed(c.cloaked[n_train:]), seed=seed)
               for a, c in pub_cloaks.items()}
        return test, val

    before, before_val = scores(lambda c: models.embeddings(base, c, cache, progress=False))
    before_val_clean = float(np.mean([v["clean_accuracy"] for v in before_val.values()]))

    def candidate(recipe, start, trained_on):
        robust = adaptive_model(setting, public, {a: pub_cloaks[a] for a in trained_on}, profile, recipe, start, seed,
                                progress, cache)
        test, val = scores(lambda c: robust.embeddings(c, cache))
        return {"recipe": recipe, "start": start, "trained_on": list(trained_on), "train_s": round(robust.train_s, 1),
                "validation_protection": round(float(np.mean([v["protection_rate"] for v in val.values()])), 4),
                "validation_clean_accuracy": round(float(np.mean([v["clean_accuracy"] for v in val.values()])), 4),
                "test": test, "model": robust}

    tried = [candidate(r, s, tuple(attack_names)) for r in recipes for s in starts]
    chosen = {r: defences.select([c for c in tried if c["recipe"] == r], before_val_clean) for r in recipes}
    if ablations and "lowkey" in attack_names and len(attack_names) > 1:
        without = tuple(a for a in attack_names if a != "lowkey")
        tried.append(candidate("align", chosen["align"]["start"] if "align" in chosen else starts[-1], without))

    def rows(c, selected):
        return [{"attack": a, "recipe": c["recipe"], "start": c["start"], "trained_on": c["trained_on"],
                 "classifier": k, "selected": selected,
                 "protection_rate": round(v["protection_rate"], 4), "protection_ci": [round(x, 4) for x in v["protection_ci"]],
                 "protection_rate_before": round(before[a, k]["protection_rate"], 4),
                 "clean_accuracy": round(v["clean_accuracy"], 4),
                 "clean_accuracy_before": round(before[a, k]["clean_accuracy"], 4), "train_s": c["train_s"],
                 "validation_protection": c["validation_protection"],
                 "validation_clean_accuracy": c["validation_clean_accuracy"]} for (a, k), v in c["test"].items()]

    results = [r for c in chosen.values() for r in rows(c, True)]
    candidate_rows = [r for c in tried for r in rows(c, any(c is s for s in chosen.values()))]

    clean_photo = []
    for label, embed in _original_and_robust([c["model"] for c in chosen.values()], cache).items():
        clean_emb = embed(setting.canvases)
        for a, c in cloaks.items():
            ev = defences.with_clean_photos(split, labels, clean_emb, dict(zip(protected_idx.tolist(), embed(c.cloaked))),
                                            seed=seed)
            clean_photo.append({"model": label, "attack": a, "classifier": "1nn", "clean_photos_per_user": 1,
                                "protection_rate": round(ev.protection_rate, 4),
                                "protection_ci": [round(x, 4) for x in ev.protection_ci]})
    run_settings = {**_common_settings(setting, profile, seed), "base": base,
                    "public_identities": int(len(public.train_identities)),
                    "validation_identities": int(len(public.validation_identities)),
                    "public_pairs_per_attack": int(n_train),
                    "public_modes": {a: resolved.defender.modes[a] for a in attack_names},
                    "public_steps": {a: resolved.defender.steps[a] for a in attack_names},
                    "modes": {a: resolved.users.modes[a] for a in attack_names},
                    "extra_lowkey_pairs": int(len(defences.lowkey_extra_photos(setting, public, profile, seed)))
                    if "lowkey" in attack_names else 0,
                    "epochs": resolved.training.robust_epochs, "lr": resolved.training.robust_lr,
                    "validation_clean_accuracy_before": round(before_val_clean, 4),
                    "validation_protection_before": {a: round(v["protection_rate"], 4) for a, v in before_val.items()},
                    "seconds": round(time.perf_counter() - start_time, 1)}
    return _recorded("adaptive", AdaptiveRun(setting, profile, seed, public, cloaks, pub_cloaks,
                                             {r: c["model"] for r, c in chosen.items()}, results, candidate_rows,
                                             clean_photo, run_settings), source)


def _original_and_robust(robust: list["defences.RobustModel"], cache=None) -> dict:
    """``canvases -> unit embeddings`` by name: the original FaceNet, then each robust model."""
    base = "facenet-keras"
    embedders = {f"{base} (original)": lambda c: models.embeddings(base, c, cache, progress=False)}
    embedders.update({m.name: (lambda c, m=m: m.embeddings(c, cache)) for m in robust})
    return embedders


def adaptive_umap(run: AdaptiveRun, attack: str, others: int = 8, seed: int = 0, cache=None
                  ) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """Coordinates for the before/after UMAP widget: the protected users' clean probes and their
    ``attack`` cloaks (a separate group, "NAME (cloaked)"), with the clean photos of ``others``
    public users, under the original model and each robust one (one UMAP fitted per model).

    Returns (coords by model name, group labels, group names).
    """
    setting, split, labels = run.setting, run.setting.split, run.setting.labels
    protected_idx = split.protected_train(labels)
    public_ids = np.setdiff1d(np.unique(labels), split.protected)[:others]
    shown = np.flatnonzero(np.isin(labels, public_ids))
    probes = split.protected_test(labels)
    n_names = len(setting.names)
    group = np.concatenate([labels[shown], labels[probes], labels[protected_idx] + n_names])
    names = list(setting.names) + [f"{n} (cloaked)" for n in setting.names]
    embedders = _original_and_robust(list(run.robust.values()), cache)
    coords = {}
    for name, embed in embedders.items():
        clean = embed(setting.canvases)
        emb = np.concatenate([clean[shown], clean[probes],
                              embed(run.cloaks[attack].cloaked)])
        coords[name] = umap_coords(emb, seed=seed, cache=cache)[0]
    return coords, group, names


def cloak_shift(clean_emb: np.ndarray, cloaked_emb: np.ndarray) -> float:
    """Mean squared distance between unit embeddings of cloaks and of the clean photos they were
    made from, row by row (0: the model does not see the cloak; up to 4: opposite)."""
    return float(((cloaked_emb - clean_emb) ** 2).sum(axis=1).mean())


def adaptive_generalisation(run: AdaptiveRun, cache=None) -> list[dict]:
    """How far cloaks still move photos, under the original FaceNet and each selected robust
    model, for three sets of cloaks: the defender's training pairs, held-out public users', and
    the protected users' (never seen). A robust model that pulls its own training pairs together
    but not the others has learnt those cloaks, not the attack: it needs more pairs. The last row
    is the scale: two clean photos of one person."""
    setting, public, n = run.setting, run.public, len(run.public.train)
    protected_idx = setting.split.protected_train(setting.labels)
    groups = {"defender's training pairs": public.train, "held-out public users": public.validation,
              "protected users": protected_idx}
    rows = {(a, g): {"attack": a, "cloaks": g, "photos": len(idx)} for a in run.cloaks for g, idx in groups.items()}
    held_out = public.validation
    scale = {"attack": "none", "cloaks": "two clean photos of one person", "photos": len(held_out)}
    for name, embed in _original_and_robust(list(run.robust.values()), cache).items():
        clean = embed(setting.canvases)  # every photo embedded once per model
        for a in run.cloaks:
            public_emb = embed(run.public_cloaks[a].cloaked)
            cloaked = {"defender's training pairs": public_emb[:n], "held-out public users": public_emb[n:],
                       "protected users": embed(run.cloaks[a].cloaked)}
            for g, idx in groups.items():
                rows[a, g][name] = round(cloak_shift(clean[idx], cloaked[g]), 3)
        # The scale to read them on: how far apart two clean photos of one (held-out) person are.
        scale[name] = round(same_person_distance(clean[held_out], setting.labels[held_out]), 3)
    return [*rows.values(), scale]


def same_person_distance(emb: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared distance between unit embeddings of two different photos of the same person."""
    d = ((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1)
    same = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    return float(d[same].mean())


@dataclass
class DetectionRun:
    """Experiment 3: a fine-tuned ImageNet CNN tells cloaked photos from clean ones."""

    setting: protocol.Setting
    profile: str
    seed: int
    public: "defences.PublicData"
    detectors: dict[str, "defences.TrainedDetector"]  # one per attack, and "all"
    results: list[dict]
    cross_attack: list[dict]
    jpeg: list[dict]
    filter: list[dict]
    test_scores: dict  # attack -> (scores of clean, scores of cloaked) under the "all" detector
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"results": self.results, "cross_attack": self.cross_attack, "jpeg": self.jpeg,
                "filter": self.filter, "settings": self.settings, "paper": paper.entries("detection")}


def _rounded(metrics: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def run_detection(source=None, profile: str = "classroom", seed: int = 0,
                  attack_names: tuple[str, ...] = attacks.ATTACKS, jpeg_quality: int = 75, progress: bool = True,
                  cache=None) -> DetectionRun:
    """Train cloak detectors on the defender's cloaks of public users; test on other identities.

    One detector per attack and one on all of them ("all"), trained on ``public.train``'s
    photos, every one for as many updates: a single-attack detector has a third of the "all"
    detector's photos and runs three times its epochs, so that it is not undertrained. LowKey's
    own detector also trains on the defender's further LowKey pairs (``defences.lowkey_extra``),
    more distinct photos of the attack it must recognise; the "all" detector keeps the attacks
    balanced, on the same photos for each. Each detector's score threshold is
    set on clean photos of the held-out public users (``defences.choose_threshold``: at most 1 %
    of them flagged); the test identities are the protected users (their own cloaks, the
    profile's modes), the negatives the clean versions of the same photos. ``cross_attack``: a
    detector tested on another attack; ``jpeg``: test photos re-compressed at ``jpeg_quality``;
    ``filter``: the "all" detector removes what it flags from the gallery and the protocol is rerun.
    """
    start_time = time.perf_counter()
    resolved = resolve(profile)
    setting, cloaks = cloaked_setting(source, profile, seed, attack_names, progress, cache)
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    public, pub_cloaks = defender_data(setting, profile, seed, attack_names, progress, cache)
    n = len(public.train)
    train_clean = setting.canvases[public.train]
    epochs = resolved.training.detector_epochs
    extra_idx, extra_cloaked = defences.lowkey_extra(setting, public, profile, seed,
                                                     None if "lowkey" in attack_names else 0, progress, cache)
    single_epochs, detectors = {}, {}
    for a in attack_names:
        clean, cloaked = train_clean, pub_cloaks[a].cloaked[:n]
        if a == "lowkey":  # the defender's further LowKey pairs (the adaptive model's too)
            clean, cloaked = np.concatenate([clean, setting.canvases[extra_idx]]), np.concatenate([cloaked, extra_cloaked])
        # as many updates as the "all" detector (its epochs over every attack's n pairs)
        single_epochs[a] = max(1, round(epochs * len(attack_names) * n / len(cloaked)))
        detectors[a] = defences.train_detector(clean, cloaked, single_epochs[a], seed=seed, trained_on=(a,),
                                               cache=cache, progress=progress)
    detectors["all"] = defences.train_detector(np.concatenate([train_clean] * len(attack_names)),
                                               np.concatenate([pub_cloaks[a].cloaked[:n] for a in attack_names]),
                                               epochs, seed=seed, trained_on=tuple(attack_names), cache=cache,
                                               progress=progress)
    # Thresholds are set on every photo of the held-out public users (clean, never trained on);
    # the test photos are the protected users' (identities never seen), cloaked by the users themselves.
    val_clean = setting.canvases[np.isin(labels, public.validation_identities)]
    test_clean = setting.canvases[protected_idx]
    results, cross, compressed, test_scores, thresholds = [], [], [], {}, {}
    for name, trained in detectors.items():
        t = thresholds[name] = defences.choose_threshold(trained.scores(val_clean))
        clean_s = trained.scores(test_clean)
        clean_jpeg_s = trained.scores(defences.jpeg(test_clean, jpeg_quality))
        for a in attack_names:
            cloaked_s = trained.scores(cloaks[a].cloaked)
            row = {"attack": a, "trained_on": list(trained.trained_on), "threshold": round(t, 4),
                   **_rounded(defences.detection_metrics(clean_s, cloaked_s, t)), "train_s": round(trained.train_s, 1)}
            if name == "all":
                test_scores[a] = (clean_s, cloaked_s)
            if a in trained.trained_on:
                results.append(row)
                jpeg_s = trained.scores(defences.jpeg(cloaks[a].cloaked, jpeg_quality))
                compressed.append({"attack": a, "trained_on": list(trained.trained_on), "quality": jpeg_quality,
                                   "threshold": round(t, 4), **_rounded(defences.detection_metrics(clean_jpeg_s, jpeg_s, t))})
            else:
                cross.append(row)

    base = "facenet-keras"
    clean_emb = models.embeddings(base, setting.canvases, cache, progress=False)
    gallery_clean = split.train[~np.isin(split.train, protected_idx)]
    clean_flags = detectors["all"].scores(setting.canvases[gallery_clean]) >= thresholds["all"]
    filtered = []
    for a, result in cloaks.items():
        cloak_flags = detectors["all"].scores(result.cloaked) >= thresholds["all"]
        cloak_emb = models.embeddings(base, result.cloaked, cache, progress=False)
        before = protocol.evaluate_embeddings(split, labels, clean_emb, dict(zip(protected_idx.tolist(), cloak_emb)), "1nn", seed)
        kept_clean, kept_cloaks = gallery_clean[~clean_flags], ~cloak_flags
        items = np.concatenate([clean_emb[kept_clean], cloak_emb[kept_cloaks]])
        item_labels = np.concatenate([labels[kept_clean], labels[protected_idx][kept_cloaks]])
        after = protocol.score(split, labels, protocol.nn1_predict(items, item_labels, clean_emb[split.test]))
        filtered.append({"attack": a, "model": base, "classifier": "1nn",
                         "cloaks_removed": int(cloak_flags.sum()), "cloaks": int(len(cloak_flags)),
                         "clean_removed": int(clean_flags.sum()), "clean": int(len(clean_flags)),
                         "protection_rate_before": round(before.protection_rate, 4),
                         "protection_rate_after": round(after.protection_rate, 4),
                         "unprotected_error_before": round(before.unprotected_error, 4),
                         "unprotected_error_after": round(after.unprotected_error, 4)})
    run_settings = {**_common_settings(setting, profile, seed), "backbone": "efficientnet-lite0",
                    "train_identities": int(len(public.train_identities)), "train_pairs_per_attack": int(n),
                    "validation_identities": int(len(public.validation_identities)),
                    "test_identities": int(len(split.protected)),
                    "test_photos_per_attack": int(len(test_clean)), "epochs": epochs,
                    "single_attack_epochs": single_epochs, "extra_lowkey_pairs": int(len(extra_idx)), "crop": defences.DETECTOR_CROP,
                    "public_modes": {a: resolved.defender.modes[a] for a in attack_names},
                    "modes": {a: resolved.users.modes[a] for a in attack_names},
                    "thresholds": {k: round(v, 4) for k, v in thresholds.items()},
                    "seconds": round(time.perf_counter() - start_time, 1)}
    return _recorded("detection", DetectionRun(setting, profile, seed, public, detectors, results, cross, compressed,
                                               filtered, test_scores, run_settings), source)


@dataclass
class TimeTravelRun:
    """Experiment 4: the oblivious trainer waits for a newer extractor."""

    setting: protocol.Setting
    profile: str
    seed: int
    cloaks: dict[str, attacks.CloakResult]
    results: list[dict]
    switching: list[dict]
    probe: list[dict]
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"results": self.results, "switching": self.switching, "probe": self.probe, "settings": self.settings,
                "paper": paper.entries("time-travel")}

    def verdicts(self, margin: float = 0.10) -> list[dict]:
        """Per attack: does the cloak still protect on the newest offline extractor? It "fails"
        there when its protection is within ``margin`` of that extractor's clean error (the
        paper's oblivious defence worked); the attacked models' protection is shown beside it."""
        newest = self.settings["newest_offline"]
        rows = []
        for attack in self.cloaks:
            mine = [r for r in self.results if r["attack"] == attack and r["available"]]
            attacked = [r["protection_rate"] for r in mine if r["attacked"]]
            new = next(r for r in mine if r["model"] == newest)
            rows.append({"attack": attack, "protection_on_attacked": min(attacked) if attacked else None,
                         "newest_offline": newest, "protection_on_newest": new["protection_rate"],
                         "clean_error_newest": new["clean_error"],
                         "still_protects": new["protection_rate"] > new["clean_error"] + margin})
        return rows


def switch_pairs(attack_names=attacks.ATTACKS) -> list[tuple[str, str]]:
    """(old, new) pairs of attacks where ``new`` was released after ``old``: the switches a user can make."""
    ordered = sorted(attack_names, key=lambda a: attacks.RELEASED[a])
    return [(old, new) for i, old in enumerate(ordered) for new in ordered[i + 1:]]


def switching_rows(setting: protocol.Setting, cloaks: dict[str, attacks.CloakResult], judges: dict, seed: int = 0
                   ) -> list[dict]:
    """The paper's switching experiment: users re-upload their photos cloaked with a newer attack.

    For each (old, new) pair of ``switch_pairs`` and each judge (``canvases -> embeddings``), two
    galleries: the new cloaks alone (``uploads: "new"``: what the user hopes for) and the old and
    new cloaks together (``"old+new"``: the old photos stay online and were already scraped).
    1-NN protection rate, with the judge's clean error (nobody protected) to read it against.
    """
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    rows = []
    for judge, embed in judges.items():
        clean = embed(setting.canvases)
        clean_error = protocol.clean_error(split, labels, clean, "1nn", seed)
        cloak_emb = {a: embed(c.cloaked) for a, c in cloaks.items()}
        for old, new in switch_pairs(tuple(cloaks)):
            alone = protocol.evaluate_embeddings(split, labels, clean, dict(zip(protected_idx.tolist(), cloak_emb[new])))
            both = defences.union_gallery_evaluation(split, labels, clean, protected_idx,
                                                     np.concatenate([cloak_emb[old], cloak_emb[new]]))
            for uploads, ev in (("new", alone), ("old+new", both)):
                rows.append({"old_attack": old, "new_attack": new, "uploads": uploads, "model": judge,
                             "classifier": "1nn", "protection_rate": round(ev.protection_rate, 4),
                             "protection_ci": [round(x, 4) for x in ev.protection_ci],
                             "clean_error": round(clean_error, 4)})
    return rows


def _embedder(name: str, cache=None):
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


def run_time_travel(source=None, profile: str = "classroom", seed: int = 0,
                    attack_names: tuple[str, ...] = attacks.ATTACKS, switching: bool = True, probe: bool = True,
                    progress: bool = True, cache=None) -> TimeTravelRun:
    """The protected users' cloaks (made once, against the attacker's-era models) against every
    extractor of the zoo, in publication order (1-NN). Models whose weights are not here are
    listed with ``"available": false`` and what they need.

    ``switching``: users who cloaked with an older attack re-upload the same photos cloaked with
    a newer one (``switching_rows``), judged by the attacker's-era models, the newest offline
    one and the adaptive model of notebook 02.
    ``probe``: a linear probe on the newest available extractor, trained on the defender's
    clean and cloaked public photos. It is not the paper's CLIP: it learns from the defender's
    few pairs, on top of an extractor the cloaks already reach; notebook 04 explains the difference.
    """
    start_time = time.perf_counter()
    setting, cloaks = cloaked_setting(source, profile, seed, attack_names, progress, cache)
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    results, embedders = [], {}
    for name in models.model_names():
        info = models.model_info(name)
        embed, where = _embedder(name, cache)
        if embed is not None:
            embedders[name] = embed
            clean_emb = embed(setting.canvases)
            clean_error = round(protocol.clean_error(split, labels, clean_emb, "1nn", seed), 4)
        for a, result in cloaks.items():
            row = {"attack": a, "attack_year": attacks.RELEASED[a], "model": name, "model_year": info.year,
                   "offline": info.offline, "attacked": name in result.models, "available": embed is not None}
            if embed is None:
                row["needs"] = where
            else:
                ev = protocol.evaluate_embeddings(split, labels, clean_emb, dict(zip(protected_idx.tolist(),
                                                                                    embed(result.cloaked))), "1nn", seed)
                row.update({"protection_rate": round(ev.protection_rate, 4),
                            "protection_ci": [round(x, 4) for x in ev.protection_ci],
                            "unprotected_error": round(ev.unprotected_error, 4),
                            "clean_error": clean_error})
            results.append(row)

    newest = max((n for n in embedders), key=lambda n: (models.model_info(n).year, n))
    newest_offline = models.FUTURE_MODEL
    switch_rows, probe_rows = [], []
    if switching or probe:
        public, pub_cloaks = defender_data(setting, profile, seed, attack_names, progress, cache)
    if switching and len(switch_pairs(attack_names)) > 0:
        robust = adaptive_model(setting, public, pub_cloaks, profile, seed=seed, progress=progress, cache=cache)
        judges = {m: embedders[m] for m in (*models.ATTACKER_MODELS, newest_offline) if m in embedders}
        judges[robust.name] = lambda c: robust.embeddings(c, cache)
        switch_rows = switching_rows(setting, cloaks, judges, seed)
    if probe:
        for base in dict.fromkeys([newest_offline, newest]):
            embed = embedders[base]
            n = len(public.train)
            feats = np.concatenate([embed(setting.canvases[public.train])] + [embed(c.cloaked[:n]) for c in pub_cloaks.values()])
            w = defences.train_probe(feats, np.tile(labels[public.train], 1 + len(pub_cloaks)), seed=seed)
            emb = defences.project(embed(setting.canvases), w)
            clean_error = protocol.clean_error(split, labels, emb, "1nn", seed)
            for a, result in cloaks.items():
                ev = protocol.evaluate_embeddings(split, labels, emb, dict(zip(protected_idx.tolist(),
                                                  defences.project(embed(result.cloaked), w))), "1nn", seed)
                probe_rows.append({"attack": a, "model": f"{base} + linear probe", "base": base, "classifier": "1nn",
                                   "protection_rate": round(ev.protection_rate, 4),
                                   "protection_rate_base": next(r["protection_rate"] for r in results
                                                                if r["model"] == base and r["attack"] == a),
                                   "clean_error": round(clean_error, 4)})
    run_settings = {**_common_settings(setting, profile, seed), "newest_offline": newest_offline,
                    "newest_available": newest, "released": {a: attacks.RELEASED[a] for a in attack_names},
                    "attack_models": {a: list(r.models) for a, r in cloaks.items()},
                    "seconds": round(time.perf_counter() - start_time, 1)}
    return _recorded("time-travel", TimeTravelRun(setting, profile, seed, cloaks, results, switch_rows, probe_rows,
                                                  run_settings), source)


@dataclass
class HybridRun:
    """Experiment 5: an accurate model and a robust one, combined by Top2 or a confidence threshold."""

    setting: protocol.Setting
    profile: str
    seed: int
    accurate: str
    robust: str
    test: dict  # attack -> defences.HybridCurves (protected users' probes)
    validation: dict  # attack -> defences.HybridCurves (held-out public users)
    tau: float
    results: dict
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"results": self.results, "settings": self.settings, "paper": paper.entries("hybrid")}


def pooled(curves: dict) -> "defences.HybridCurves":
    """Average the curves of several attacks (same thresholds) into one."""
    cs = list(curves.values())
    single = {k: {m: float(np.mean([c.single[k][m] for c in cs])) for m in cs[0].single[k]} for k in cs[0].single}
    return defences.HybridCurves(cs[0].taus, np.mean([c.clean_accuracy for c in cs], 0),
                                 np.mean([c.protection_rate for c in cs], 0), single,
                                 float(np.mean([c.human_needed for c in cs])))


def run_hybrid(source=None, profile: str = "classroom", seed: int = 0, robust: str = "adaptive",
               attack_names: tuple[str, ...] = attacks.ATTACKS, progress: bool = True, cache=None) -> HybridRun:
    """Combine the most accurate extractor of the zoo with a robust one (``"adaptive"``: the aligned
    FaceNet of notebook 02; ``"newest"``: the newest offline extractor).

    The threshold is chosen on the defender's held-out public users, cloaked by the defender
    (``defences.choose_tau``), then applied to the protected users. Rates are averaged over attacks.
    """
    start_time = time.perf_counter()
    setting, cloaks = cloaked_setting(source, profile, seed, attack_names, progress, cache)
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    public, pub_cloaks = defender_data(setting, profile, seed, attack_names, progress, cache)
    clean_acc = {n: protocol.clean_nn1_accuracy(models.embeddings(n, setting.canvases, cache, progress=False), labels, split)
                 for n in evaluation_models()}
    accurate = max(clean_acc, key=lambda n: (clean_acc[n], -models.model_info(n).year))
    embed = {"accurate": lambda c: models.embeddings(accurate, c, cache, progress=False)}
    if robust == "adaptive":
        model = adaptive_model(setting, public, pub_cloaks, profile, seed=seed, progress=progress, cache=cache)
        robust_name, embed["robust"] = model.name, (lambda c: model.embeddings(c, cache))
    elif robust == "newest":
        robust_name = models.FUTURE_MODEL
        embed["robust"] = lambda c: models.embeddings(robust_name, c, cache, progress=False)
    else:
        raise ValueError(f"Unknown robust model {robust!r}; choose 'adaptive' or 'newest'")
    taus = np.round(np.linspace(0.0, 1.5, 151), 3)
    val_split, val_probes = defences.validation_split(setting, public)
    n = len(public.train)
    test, validation = {}, {}
    clean_by_role = {role: f(setting.canvases) for role, f in embed.items()}
    for a in attack_names:
        views, val_views = {}, {}
        for role, f in embed.items():
            emb = clean_by_role[role]
            views[role] = (emb, dict(zip(protected_idx.tolist(), f(cloaks[a].cloaked))))
            val_views[role] = (emb, dict(zip(public.validation.tolist(), f(pub_cloaks[a].cloaked[n:]))))
        test[a] = defences.hybrid_curves(split, labels, views, taus)
        validation[a] = defences.hybrid_curves(val_split, labels, val_views, taus, probes=val_probes)
    tau = defences.choose_tau(pooled(validation))
    overall = pooled(test)
    i = int(np.flatnonzero(taus == tau)[0])

    def entry(rates, model, per_attack):
        return {"model": model, "clean_accuracy": round(rates["clean_accuracy"], 4),
                "protection_rate": round(rates["protection_rate"], 4),
                "per_attack": {a: round(v, 4) for a, v in per_attack.items()}}
    results = {"accurate": entry(overall.single["accurate"], accurate,
                                 {a: c.single["accurate"]["protection_rate"] for a, c in test.items()}),
               "robust": entry(overall.single["robust"], robust_name,
                               {a: c.single["robust"]["protection_rate"] for a, c in test.items()}),
               "threshold": {**entry({"clean_accuracy": overall.clean_accuracy[i], "protection_rate": overall.protection_rate[i]},
                                     f"{accurate} | {robust_name}", {a: c.protection_rate[i] for a, c in test.items()}),
                             "tau": tau},
               "top2": {**entry(overall.single["top2"], f"{accurate} + {robust_name}",
                                {a: c.single["top2"]["protection_rate"] for a, c in test.items()}),
                        "human_needed": round(overall.human_needed, 4)}}
    run_settings = {**_common_settings(setting, profile, seed), "clean_accuracy_1nn": clean_acc,
                    "tau_chosen_on": f"{len(public.validation_identities)} held-out public users",
                    "classifier": "1nn", "attacks": list(attack_names), "seconds": round(time.perf_counter() - start_time, 1)}
    return _recorded("hybrid", HybridRun(setting, profile, seed, accurate, robust_name, test, validation, tau, results,
                                         run_settings), source)


@dataclass
class YourPhotoRun:
    """Notebook 06: a user's photos, cloaked, enrolled among other people; each model is asked who they are."""

    enrolled: np.ndarray  # the user's photos that get posted (clean canvases)
    cloaked: np.ndarray  # ... as posted, cloaked
    queries: np.ndarray  # clean photos of the user that the models are asked about
    result: attacks.CloakResult
    answers: list[dict]  # per model of the timeline: recognised with clean vs cloaked photos enrolled
    shared: list[dict]  # per social-network transform x model: protection after the upload was processed
    notes: list[str]  # what loading, face choice and the sample did, one line each
    errors: list[str]  # photos that could not be used, one line each
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"results": self.answers, "shared": self.shared, "notes": self.notes, "errors": self.errors,
                "settings": self.settings}

    def messages(self) -> list[str]:
        """One line per unusable photo, then one per note: what the notebook and the widget show."""
        return [f"problem: {e}" for e in self.errors] + [f"note: {n}" for n in self.notes]


def your_canvases(photos, face_choice: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """Canvases of the faces in a user's photos (paths or ``(name, bytes)``), with notes and errors.

    A photo that cannot be used adds one line to the errors and is skipped.
    """
    from .data import PhotoError, load_photo
    from .faces import CANVAS, face_in_photo
    canvases, notes, errors = [], [], []
    for item in photos:
        name, source = (item if isinstance(item, tuple) else (str(item), item))
        try:
            photo = load_photo(source, name)
            face, note = face_in_photo(photo.image, face_choice)
        except PhotoError as exc:
            errors.append(f"{name}: {exc}")
            continue
        canvases.append(face.canvas)
        notes += [f"{name}: {n}" for n in photo.notes + ([note] if note else [])]
    return np.stack(canvases) if canvases else np.empty((0, CANVAS, CANVAS, 3), np.uint8), notes, errors


def run_your_photo(photos=None, attack: str = "fawkes-v1.0", mode: str | None = None, source=None,
                   profile: str = "classroom", seed: int = 0, face_choice: int = 0, progress: bool = True,
                   cache=None) -> YourPhotoRun:
    """Cloak a user's photos, post them among the other identities of ``source``, and ask every
    model of the timeline "who is this?" on clean photos of the user.

    ``photos`` (paths or ``(name, bytes)`` uploads): with two or more usable photos, the last
    one stays clean and is the question; the others are cloaked and posted. With one, that
    photo is posted cloaked and its clean original is the question. ``None``: the built-in
    sample, the first protected user of the profile's setting (their scraped photos posted,
    their test photos asked about; at the profile's own mode the cloaks of notebook 01 are reused).
    Each model answers by 1-NN over everyone's clean training photos plus the user's posted ones.
    Raises ``explainer.data.PhotoError`` when no photo is usable.
    """
    from .data import PhotoError
    start_time = time.perf_counter()
    setting = protocol.load_setting(source, profile, seed, progress=progress, cache=cache)
    split, labels = setting.split, setting.labels
    users = resolve(profile).users
    mode = mode or users.modes.get(attack) or attacks.default_mode(attack)
    notes, errors = [], []
    if photos is None:
        user = int(split.protected[0])
        protected_idx = split.protected_train(labels)
        mine = labels[protected_idx] == user
        enrolled = setting.canvases[protected_idx[mine]]
        queries = setting.canvases[split.test[labels[split.test] == user]]
        others = split.train[labels[split.train] != user]
        notes.append(f"sample: {setting.names[user]} of the built-in faces, {len(enrolled)} photos posted, "
                     f"{len(queries)} clean photos asked about")
        if mode == users.modes[attack]:  # the very cloaks of notebook 01, from the cache
            result = protected_cloaks(setting, attack, profile, seed, progress, cache).subset(mine)
        else:
            result = None
    else:
        user = -1
        canvases, notes, errors = your_canvases(photos, face_choice)
        if len(canvases) == 0:
            raise PhotoError("none of the photos could be used: " + "; ".join(errors))
        if len(canvases) == 1:
            enrolled, queries = canvases, canvases
            notes.append("one photo: it is posted cloaked and its clean original is the question (upload two or "
                         "more to ask about a photo that was never posted)")
        else:
            enrolled, queries = canvases[:-1], canvases[-1:]
        others = split.train
        result = None
    if result is None:
        kwargs = {}
        if attack == "fawkes-v0.3":  # v0.3's target is another person of the public photos
            kwargs = {"users": np.full(len(enrolled), user), "pool": (setting.canvases[others], labels[others])}
        result = attacks.cloak(enrolled, attack, mode, seed=seed, progress=progress, cache=cache,
                               steps=users.steps_of(attack), **kwargs)

    you = setting.faces.n_identities  # the user's label, after everyone else's
    gallery_labels = np.concatenate([labels[others], np.full(len(enrolled), you)])
    names = list(setting.names) + ["you"]
    answers, shared = [], []
    for name in models.model_names():
        info = models.model_info(name)
        embed, where = _embedder(name, cache)
        row = {"model": name, "model_year": info.year, "offline": info.offline, "attacked": name in result.models,
               "available": embed is not None}
        if embed is None:
            answers.append({**row, "needs": where})
            shared += [{**row, "attack": how, "needs": where} for how in defences.SOCIAL_NETWORK]
            continue
        gallery = embed(setting.canvases[others])
        asked = embed(queries)

        def recognised(posted: np.ndarray) -> tuple[float, np.ndarray]:
            pred = protocol.nn1_predict(np.concatenate([gallery, posted]), gallery_labels, asked)
            return float(np.mean(pred == you)), pred

        clean_rate, _ = recognised(embed(enrolled))
        cloaked_rate, pred = recognised(embed(result.cloaked))
        top = int(np.bincount(pred).argmax())
        answers.append({**row, "recognised_clean": round(clean_rate, 4), "recognised_cloaked": round(cloaked_rate, 4),
                        "protection_rate": round(1 - cloaked_rate, 4), "answer": names[top], "questions": len(queries)})
        for how, transform in defences.SOCIAL_NETWORK.items():
            rate, _ = recognised(embed(transform(result.cloaked)))
            shared.append({**row, "attack": how, "protection_rate": round(1 - rate, 4),
                           "clean_error": round(1 - clean_rate, 4)})
    run_settings = {**_common_settings(setting, profile, seed), "attack": attack, "mode": result.mode,
                    "attack_models": list(result.models), "posted": len(enrolled), "questions": len(queries),
                    "others": int(len(np.unique(labels[others]))), "sample": photos is None,
                    "seconds": round(time.perf_counter() - start_time, 1)}
    return YourPhotoRun(enrolled, result.cloaked, queries, result, answers, shared, notes, errors, run_settings)


# The other Fawkes modes notebook 01's viewer shows on one photo (up to ``mid``/``high``: cheap)
VIEWER_EXTRA_MODES = {"fawkes-v0.3": ("min", "low", "mid"), "fawkes-v1.0": ("low", "mid", "high")}


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
        mode = budget.modes["lowkey"]
        rows.append({"attack": "lowkey", "role": "public-lowkey", "mode": mode,
                     "steps": attacks.steps_of("lowkey", mode, budget.steps["lowkey"]), "photos": n_extra})
    if profile != "ci":  # viewer_results(extra_modes=True): one photo in each other mode
        for a, wanted in VIEWER_EXTRA_MODES.items():
            for mode in wanted:
                if mode != users.modes[a]:
                    rows.append({"attack": a, "role": "viewer", "mode": mode, "steps": attacks.steps_of(a, mode), "photos": 1})
    return rows


EXPERIMENTS = {"poisoning": run_poisoning, "adaptive": run_adaptive, "detection": run_detection,
               "time-travel": run_time_travel, "hybrid": run_hybrid}


def iterate_frames(run: PoisoningRun, user: int, eval_models: list[str], seed: int = 0, cache=None) -> dict:
    """UMAP coordinates for the iterate slider of notebook 01, per (attack, evaluating model).

    UMAP is fitted once per model on the clean photos of everyone (the protected user's
    scraped photos left out); the cloak iterates of ``user`` are placed with ``transform``.
    """
    setting, split, labels = run.setting, run.setting.split, run.setting.labels
    protected_idx = split.protected_train(labels)
    mine = labels[protected_idx] == user
    base_idx = np.setdiff1d(np.arange(len(labels)), protected_idx[mine])
    user_test = split.test[labels[split.test] == user]
    frames = {}
    for model_name in eval_models:
        emb = models.embeddings(model_name, setting.canvases, cache, progress=False)
        its = {a: r.iterates[:, mine] for a, r in run.cloaks.items()}  # (T, K, H, W, 3) each
        it_emb = [models.embeddings(model_name, i.reshape(-1, *i.shape[2:]), cache, progress=False) for i in its.values()]
        base, placed = umap_coords(emb[base_idx], seed=seed, place=it_emb, cache=cache)
        test_coords = base[np.searchsorted(base_idx, user_test)]
        for (attack_name, i), coords in zip(its.items(), placed):
            frames[attack_name, model_name] = {"base": base, "base_labels": labels[base_idx], "user_test": test_coords,
                                               "iterates": coords.reshape(i.shape[0], i.shape[1], 2),
                                               "steps": run.cloaks[attack_name].iterate_steps}
    return frames


def viewer_results(run: PoisoningRun, extra_modes: bool = False, seed: int = 0, progress: bool = True,
                   cache=None) -> dict[str, tuple[np.ndarray, attacks.CloakResult]]:
    """What the clean-vs-cloaked viewer shows: the run's cloaks of all protected photos, and, with
    ``extra_modes``, every other Fawkes mode (up to ``mid``/``high``) on the first protected photo."""
    setting = run.setting
    idx = setting.split.protected_train(setting.labels)
    out = {f"{a} {r.mode}": (setting.canvases[idx], r) for a, r in run.cloaks.items()}
    if extra_modes:
        first = setting.canvases[idx[:1]]
        for attack_name, wanted in VIEWER_EXTRA_MODES.items():
            for mode in wanted:
                if f"{attack_name} {mode}" in out:
                    continue
                kwargs = ({"users": setting.labels[idx[:1]], "pool": protocol.target_pool(setting)}
                          if attack_name == "fawkes-v0.3" else {})
                out[f"{attack_name} {mode}"] = (first, attacks.cloak(first, attack_name, mode, seed=seed,
                                                                     progress=progress, cache=cache, **kwargs))
    return out
