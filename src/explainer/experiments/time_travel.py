"""Experiment 4 (notebook 04): the oblivious trainer waits for a newer extractor; switching attacks."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import attacks, defences, models, paper, protocol
from .common import Scenario, adaptive_model, cloaked_setting, common_settings, defender_data, embedder


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


def run_time_travel(scenario: Scenario, attack_names: tuple[str, ...] = attacks.ATTACKS, switching: bool = True,
                    probe: bool = True) -> TimeTravelRun:
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
    seed, cache = scenario.seed, scenario.cache
    setting, cloaks = cloaked_setting(scenario, attack_names)
    results, embedders = zoo_rows(setting, cloaks, seed, cache)

    newest = max((n for n in embedders), key=lambda n: (models.model_info(n).year, n))
    newest_offline = models.FUTURE_MODEL
    switch_rows, probe_rows = [], []
    if switching or probe:
        public, pub_cloaks = defender_data(scenario, attack_names)
    if switching and len(switch_pairs(attack_names)) > 0:
        robust = adaptive_model(scenario, public, pub_cloaks)
        judges = {m: embedders[m] for m in (*models.ATTACKER_MODELS, newest_offline) if m in embedders}
        judges[robust.name] = lambda c: robust.embeddings(c, cache)
        switch_rows = switching_rows(setting, cloaks, judges, seed)
    if probe:
        for base in dict.fromkeys([newest_offline, newest]):
            probe_rows += probe_rows_of(setting, public, pub_cloaks, cloaks, base, embedders[base], results, seed, cache)
    run_settings = {**common_settings(scenario), "newest_offline": newest_offline,
                    "newest_available": newest, "released": {a: attacks.RELEASED[a] for a in attack_names},
                    "attack_models": {a: list(r.models) for a, r in cloaks.items()},
                    "seconds": round(time.perf_counter() - start_time, 1)}
    return scenario.record("time-travel", TimeTravelRun(setting, scenario.profile, seed, cloaks, results, switch_rows,
                                                       probe_rows, run_settings))


def zoo_rows(setting, cloaks, seed: int = 0, cache=None) -> tuple[list[dict], dict]:
    """Every extractor of the zoo, in publication order, against the cloaks (1-NN): one row per
    (attack, model), models whose weights are not here listed with what they need; and the
    embedders of the models that ran."""
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    results, embedders = [], {}
    for name in models.model_names():
        info = models.model_info(name)
        embed, where = embedder(name, cache)
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
    return results, embedders


def probe_rows_of(setting, public, pub_cloaks, cloaks, base: str, embed, results: list[dict], seed: int = 0,
                  cache=None) -> list[dict]:
    """A linear probe on ``base``'s features, trained on the defender's clean and cloaked public
    photos (cached in ``cache``), against the cloaks (1-NN), beside ``base`` alone (from ``results``)."""
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    n = len(public.train)
    feats = np.concatenate([embed(setting.canvases[public.train])] + [embed(c.cloaked[:n]) for c in pub_cloaks.values()])
    w = defences.train_probe(feats, np.tile(labels[public.train], 1 + len(pub_cloaks)), seed=seed, cache=cache)
    emb = defences.project(embed(setting.canvases), w)
    clean_error = protocol.clean_error(split, labels, emb, "1nn", seed)
    rows = []
    for a, result in cloaks.items():
        ev = protocol.evaluate_embeddings(split, labels, emb, dict(zip(protected_idx.tolist(),
                                          defences.project(embed(result.cloaked), w))), "1nn", seed)
        rows.append({"attack": a, "model": f"{base} + linear probe", "base": base, "classifier": "1nn",
                     "protection_rate": round(ev.protection_rate, 4),
                     "protection_rate_base": next(r["protection_rate"] for r in results
                                                  if r["model"] == base and r["attack"] == a),
                     "clean_error": round(clean_error, 4)})
    return rows
