"""Experiment 5 (notebook 05): an accurate model and a robust one, by Top2 or a confidence threshold."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import attacks, defences, models, paper, protocol
from .common import Scenario, adaptive_model, cloaked_setting, common_settings, defender_data, evaluation_models


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


def run_hybrid(scenario: Scenario, robust: str = "adaptive", attack_names: tuple[str, ...] = attacks.ATTACKS
               ) -> HybridRun:
    """Combine the most accurate extractor of the zoo with a robust one (``"adaptive"``: the aligned
    FaceNet of notebook 02; ``"newest"``: the newest offline extractor).

    The threshold is chosen on the defender's held-out public users, cloaked by the defender
    (``defences.choose_tau``), then applied to the protected users. Rates are averaged over attacks.
    """
    start_time = time.perf_counter()
    seed, cache = scenario.seed, scenario.cache
    setting, cloaks = cloaked_setting(scenario, attack_names)
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    public, pub_cloaks = defender_data(scenario, attack_names)
    clean_acc = {n: protocol.clean_nn1_accuracy(models.embeddings(n, setting.canvases, cache, progress=False), labels, split)
                 for n in evaluation_models()}
    accurate = max(clean_acc, key=lambda n: (clean_acc[n], -models.model_info(n).year))
    embed = {"accurate": lambda c: models.embeddings(accurate, c, cache, progress=False)}
    if robust == "adaptive":
        model = adaptive_model(scenario, public, pub_cloaks)
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

    results = _hybrid_results(test, overall, i, tau, accurate, robust_name)
    run_settings = {**common_settings(scenario), "clean_accuracy_1nn": clean_acc,
                    "tau_chosen_on": f"{len(public.validation_identities)} held-out public users",
                    "classifier": "1nn", "attacks": list(attack_names), "seconds": round(time.perf_counter() - start_time, 1)}
    return scenario.record("hybrid", HybridRun(setting, scenario.profile, seed, accurate, robust_name, test, validation,
                                              tau, results, run_settings))


def _entry(rates: dict, model: str, per_attack: dict) -> dict:
    return {"model": model, "clean_accuracy": round(rates["clean_accuracy"], 4),
            "protection_rate": round(rates["protection_rate"], 4),
            "per_attack": {a: round(v, 4) for a, v in per_attack.items()}}


def _hybrid_results(test: dict, overall, i: int, tau: float, accurate: str, robust_name: str) -> dict:
    """The accurate and robust models alone, the threshold hybrid at ``tau`` (index ``i``) and Top2."""
    return {"accurate": _entry(overall.single["accurate"], accurate,
                               {a: c.single["accurate"]["protection_rate"] for a, c in test.items()}),
            "robust": _entry(overall.single["robust"], robust_name,
                             {a: c.single["robust"]["protection_rate"] for a, c in test.items()}),
            "threshold": {**_entry({"clean_accuracy": overall.clean_accuracy[i], "protection_rate": overall.protection_rate[i]},
                                   f"{accurate} | {robust_name}", {a: c.protection_rate[i] for a, c in test.items()}),
                          "tau": tau},
            "top2": {**_entry(overall.single["top2"], f"{accurate} + {robust_name}",
                              {a: c.single["top2"]["protection_rate"] for a, c in test.items()}),
                     "human_needed": round(overall.human_needed, 4)}}
