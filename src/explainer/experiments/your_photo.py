"""Notebook 06: a user's own photos, cloaked, posted among other people, and every model asked who they are."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import attacks, defences, models, protocol
from ..data import PhotoError, load_photo
from ..faces import CANVAS, face_in_photo
from .common import Scenario, common_settings, embedder, protected_cloaks


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


def run_your_photo(scenario: Scenario, photos=None, attack: str = "fawkes-v1.0", mode: str | None = None,
                   face_choice: int = 0) -> YourPhotoRun:
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
    start_time = time.perf_counter()
    setting, seed, cache, progress = scenario.setting, scenario.seed, scenario.cache, scenario.progress
    split, labels = setting.split, setting.labels
    users = scenario.sizes.users
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
            result = protected_cloaks(scenario, attack).subset(mine)
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
        # a targeted tool's target is another person of the public photos
        result = attacks.cloak(enrolled, attack, mode, users=np.full(len(enrolled), user),
                               pool=(setting.canvases[others], labels[others]), seed=seed, progress=progress,
                               cache=cache, steps=users.steps_of(attack))

    answers, shared = ask_every_model(setting, others, enrolled, queries, result, cache)
    run_settings = {**common_settings(scenario), "attack": attack, "mode": result.mode,
                    "attack_models": list(result.models), "posted": len(enrolled), "questions": len(queries),
                    "others": int(len(np.unique(labels[others]))), "sample": photos is None,
                    "seconds": round(time.perf_counter() - start_time, 1)}
    return YourPhotoRun(enrolled, result.cloaked, queries, result, answers, shared, notes, errors, run_settings)


def ask_every_model(setting, others: np.ndarray, enrolled: np.ndarray, queries: np.ndarray, result, cache=None
                    ) -> tuple[list[dict], list[dict]]:
    """Every model of the timeline asked "who is this?" about ``queries`` (1-NN over the photos
    ``others`` plus the user's posted ones): with the posted photos clean and cloaked, and after a
    social network processed the cloaked upload. Models that need a download say what they need."""
    labels = setting.labels
    you = setting.faces.n_identities  # the user's label, after everyone else's
    gallery_labels = np.concatenate([labels[others], np.full(len(enrolled), you)])
    names = list(setting.names) + ["you"]
    answers, shared = [], []
    for name in models.model_names():
        info = models.model_info(name)
        embed, where = embedder(name, cache)
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
    return answers, shared
