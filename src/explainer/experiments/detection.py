"""Experiment 3 (notebook 03): a fine-tuned ImageNet CNN tells cloaked photos from clean ones."""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from .. import attacks, defences, models, paper, protocol
from ..cache import frozen
from .common import Scenario, cloaked_setting, common_settings, defender_data, rounded


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


def run_detection(scenario: Scenario, attack_names: tuple[str, ...] = attacks.ATTACKS,
                  jpeg_quality: int = 75) -> DetectionRun:
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
    resolved, seed, cache = scenario.sizes, scenario.seed, scenario.cache
    setting, cloaks = cloaked_setting(scenario, attack_names)
    public, pub_cloaks = defender_data(scenario, attack_names)
    n, epochs = len(public.train), resolved.training.detector_epochs
    detectors, single_epochs, extra_idx = _train_detectors(scenario, public, pub_cloaks, attack_names, epochs)
    results, cross, compressed, test_scores, thresholds = _score_detectors(setting, public, cloaks, detectors,
                                                                           attack_names, jpeg_quality)
    filtered = _filtered_gallery(setting, cloaks, detectors["all"], thresholds["all"], seed, cache)
    split, test_clean = setting.split, setting.split.protected_train(setting.labels)
    run_settings = {**common_settings(scenario), "backbone": "efficientnet-lite0",
                    "train_identities": int(len(public.train_identities)), "train_pairs_per_attack": int(n),
                    "validation_identities": int(len(public.validation_identities)),
                    "test_identities": int(len(split.protected)),
                    "test_photos_per_attack": int(len(test_clean)), "epochs": epochs,
                    "single_attack_epochs": single_epochs, "extra_lowkey_pairs": int(len(extra_idx)), "crop": defences.DETECTOR_CROP,
                    "public_modes": {a: resolved.defender.modes[a] for a in attack_names},
                    "modes": {a: resolved.users.modes[a] for a in attack_names},
                    "thresholds": {k: round(v, 4) for k, v in thresholds.items()},
                    "seconds": round(time.perf_counter() - start_time, 1)}
    return scenario.record("detection", DetectionRun(setting, scenario.profile, seed, public, detectors, results, cross,
                                                    compressed, filtered, test_scores, run_settings))


def _train_detectors(scenario: Scenario, public, pub_cloaks, attack_names, epochs):
    """One detector per attack and one on all of them, every one for as many updates: (detectors,
    each single-attack detector's epochs, the further LowKey photos)."""
    setting, seed, cache, progress = scenario.setting, scenario.seed, scenario.cache, scenario.progress
    n = len(public.train)
    train_clean = setting.canvases[public.train]
    extra_idx, extra_cloaked = defences.lowkey_extra(setting, public, scenario.profile, seed,
                                                     None if attacks.HARDEST in attack_names else 0, progress, cache)
    single_epochs, detectors = {}, {}
    for a in attack_names:
        clean, cloaked = train_clean, pub_cloaks[a].cloaked[:n]
        if a == attacks.HARDEST:  # the defender's further LowKey pairs (the adaptive model's too)
            clean, cloaked = np.concatenate([clean, setting.canvases[extra_idx]]), np.concatenate([cloaked, extra_cloaked])
        # as many updates as the "all" detector (its epochs over every attack's n pairs)
        single_epochs[a] = max(1, round(epochs * len(attack_names) * n / len(cloaked)))
        detectors[a] = defences.train_detector(clean, cloaked, single_epochs[a], seed=seed, trained_on=(a,),
                                               cache=cache, progress=progress)
    detectors["all"] = defences.train_detector(np.concatenate([train_clean] * len(attack_names)),
                                               np.concatenate([pub_cloaks[a].cloaked[:n] for a in attack_names]),
                                               epochs, seed=seed, trained_on=tuple(attack_names), cache=cache,
                                               progress=progress)
    return detectors, single_epochs, extra_idx


def _score_detectors(setting, public, cloaks, detectors, attack_names, jpeg_quality):
    """Each detector's threshold, set on every photo of the held-out public users (clean, never
    trained on), and its metrics on the protected users' photos (identities never seen, cloaked by
    the users themselves): on its own attacks, on the others, and after JPEG."""
    val_clean = frozen(setting.canvases[np.isin(setting.labels, public.validation_identities)])
    test_clean = frozen(setting.canvases[setting.split.protected_train(setting.labels)])
    # every detector scores the same photos: re-compressed once, each array hashed once for the cache keys
    jpeg = functools.cache(lambda name: frozen(defences.jpeg(cloaks[name].cloaked if name else test_clean, jpeg_quality)))
    results, cross, compressed, test_scores, thresholds = [], [], [], {}, {}
    for name, trained in detectors.items():
        t = thresholds[name] = defences.choose_threshold(trained.scores(val_clean))
        clean_s = trained.scores(test_clean)
        clean_jpeg_s = trained.scores(jpeg(None))
        for a in attack_names:
            cloaked_s = trained.scores(cloaks[a].cloaked)
            row = {"attack": a, "trained_on": list(trained.trained_on), "threshold": round(t, 4),
                   **rounded(defences.detection_metrics(clean_s, cloaked_s, t)), "train_s": round(trained.train_s, 1)}
            if name == "all":
                test_scores[a] = (clean_s, cloaked_s)
            if a in trained.trained_on:
                results.append(row)
                jpeg_s = trained.scores(jpeg(a))
                compressed.append({"attack": a, "trained_on": list(trained.trained_on), "quality": jpeg_quality,
                                   "threshold": round(t, 4), **rounded(defences.detection_metrics(clean_jpeg_s, jpeg_s, t))})
            else:
                cross.append(row)
    return results, cross, compressed, test_scores, thresholds


def _filtered_gallery(setting, cloaks, detector, threshold, seed, cache) -> list[dict]:
    """The detector as the trainer's filter: flagged photos leave the gallery, the protocol is rerun (1-NN)."""
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    base = "facenet-keras"
    clean_emb = models.embeddings(base, setting.canvases, cache, progress=False)
    gallery_clean = split.train[~np.isin(split.train, protected_idx)]
    clean_flags = detector.scores(setting.canvases[gallery_clean]) >= threshold
    filtered = []
    for a, result in cloaks.items():
        cloak_flags = detector.scores(result.cloaked) >= threshold
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
    return filtered
