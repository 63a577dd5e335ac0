"""Experiment 1 (notebook 01): cloaks fool the model they were made against."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import attacks, models, paper, protocol
from ..maps import umap_coords
from .common import VIEWER_EXTRA_MODES, Scenario, common_settings, evaluation_models, protected_cloaks


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


def run_poisoning(scenario: Scenario, eval_models: list[str] | None = None,
                  classifiers: tuple[str, ...] = protocol.CLASSIFIERS, attack_names: tuple[str, ...] = attacks.ATTACKS
                  ) -> PoisoningRun:
    """Cloak the protected users' scraped photos with each attack; evaluate every model and classifier.

    For each (attack, model, classifier): the protection rate (error on protected users' clean
    test photos, with a Wilson interval), the unprotected users' error, and the clean error
    with nobody protected. ``attacked`` says whether the cloak was made against that model.
    """
    start = time.perf_counter()
    setting, seed, cache, progress = scenario.setting, scenario.seed, scenario.cache, scenario.progress
    split, labels = setting.split, setting.labels
    eval_models = eval_models or evaluation_models()
    protected_idx = split.protected_train(labels)
    cloaks = {a: protected_cloaks(scenario, a, iterates=True) for a in attack_names}  # the slider shows them
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
    users = scenario.sizes.users
    run_settings = {**common_settings(scenario),
                    "protected": [setting.names[i] for i in split.protected],
                    "protected_train_photos": int(len(protected_idx)),
                    "modes": {a: users.modes[a] for a in attack_names}, "lowkey_steps": users.steps[attacks.HARDEST],
                    "attack_models": {a: list(r.models) for a, r in cloaks.items()},
                    "attack_precision": sorted({r.precision for r in cloaks.values()}),
                    "perceptual": {a: r.perceptual for a, r in cloaks.items() if r.perceptual},
                    "seconds": round(time.perf_counter() - start, 1)}
    return scenario.record("poisoning", PoisoningRun(setting, scenario.profile, seed, cloaks, results, run_settings))


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
                out[f"{attack_name} {mode}"] = (first, attacks.cloak(
                    first, attack_name, mode, users=setting.labels[idx[:1]], pool=protocol.target_pool(setting),
                    seed=seed, progress=progress, cache=cache))
    return out
