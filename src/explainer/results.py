"""This run's results beside the paper's: the store notebook 07 reads, and the comparisons.

Every experiment records its JSON report here when it finishes (``record``), keyed by the
data source, profile and seed. Notebook 07 and the results page read those reports back
(``recorded``) and compute nothing themselves. ``compare`` puts each of the paper's figures
(``explainer.paper``) beside the number this run measured in the closest setting;
``arms_race`` gathers, per attack, the protection left under each move of the trainer.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import paper
from .cache import cache_root, content_hash, write_atomic
from .data import default_source

NOTEBOOK_OF = {"poisoning": "01_poisoning", "adaptive": "02_adaptive_defence", "detection": "03_detection",
               "time-travel": "04_time_travel", "hybrid": "05_hybrids"}


def source_id(source) -> str:
    """One name per data source: ``orl``, ``lfw`` or a folder's absolute path."""
    source = default_source() if source is None else source
    if str(source).lower() in ("orl", "lfw"):
        return str(source).lower()
    return str(Path(source).expanduser().resolve())


def _path(name: str, source, profile: str, seed: int) -> Path:
    return cache_root() / "results" / f"{name}-{content_hash(source_id(source), profile, seed)[:16]}.json"


def record(name: str, report: dict, source, profile: str, seed: int) -> Path:
    """Store an experiment's JSON report (atomically: a reader never sees half a file)."""
    entry = {"experiment": name, "data": source_id(source), "profile": profile, "seed": seed, "report": report}
    return write_atomic(_path(name, source, profile, seed), json.dumps(entry).encode("utf-8"))


def recorded(source, profile: str, seed: int = 0, names=tuple(NOTEBOOK_OF)) -> dict[str, dict]:
    """The reports recorded for this data, profile and seed, by experiment (missing ones left out)."""
    out = {}
    for name in names:
        path = _path(name, source, profile, seed)
        try:
            out[name] = json.loads(path.read_text(encoding="utf-8"))["report"]
        except (OSError, ValueError, KeyError):
            continue
    return out


def missing_notebooks(reports: dict) -> list[str]:
    """The notebooks still to run before notebook 07 has everything, in order."""
    return [nb for name, nb in NOTEBOOK_OF.items() if name not in reports]


# This run's counterpart of each paper figure -----------------------------------------------------

def pick(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _one(rows, **match):
    found = pick(rows, **match)
    return found[0] if found else None


def _span(values) -> tuple[float, float] | None:
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else None


def attacked_rows(report, classifier):
    return pick(report["results"], model="facenet-keras", attacked=True, classifier=classifier)


def adaptive_rows(report, classifier="1nn"):
    return pick(report["results"], recipe="align", classifier=classifier)


def newest_model(report):
    return report["settings"]["newest_offline"]


def _rate(row, key="protection_rate"):
    return None if row is None or row.get(key) is None else float(row[key])


def _detector(report, metric):
    rows = [r for r in report["results"] if len(r["trained_on"]) > 1]
    return round(sum(r[metric] for r in rows) / len(rows), 4) if rows else None


def _time_travel(report, attack, model):
    row = _one(report["results"], attack=attack, model=model)
    if row is None:
        return None, f"{model} is not in this run's zoo"
    if not row["available"]:
        return None, f"{model}: needs download"
    return _rate(row), f"{attack} on {model}, 1-NN"


def _clip(report):
    attack = paper.figure("facecure-oblivious-lowkey-clip").attack
    rows = [r for r in report["results"] if r["attack"] == attack and r["model"].startswith("clip")]
    ready = [r for r in rows if r["available"]]
    if ready:
        return _rate(ready[0]), f"lowkey on {ready[0]['model']}, 1-NN"
    return None, "CLIP needs a download (see notebook 04)"


THIS_RUN = {
    "post-baseline-protected": lambda r: (_span(_rate(x) for x in attacked_rows(r, "1nn")),
                                          "the three attacks, 1-NN on facenet-keras (attacked)"),
    "post-baseline-unprotected": lambda r: (_span(_rate(x, "unprotected_error") for x in attacked_rows(r, "1nn")),
                                            "unprotected users, 1-NN on facenet-keras"),
    "facecure-baseline-nn-fawkes": lambda r: (_rate(_one(attacked_rows(r, "1nn"), attack="fawkes-v1.0")),
                                              "fawkes-v1.0, 1-NN on facenet-keras (attacked)"),
    "facecure-baseline-nn-lowkey": lambda r: (_rate(_one(attacked_rows(r, "1nn"), attack="lowkey")),
                                              "lowkey, 1-NN on facenet-keras (attacked)"),
    "facecure-baseline-e2e-fawkes": lambda r: (_rate(_one(attacked_rows(r, "e2e"), attack="fawkes-v1.0")),
                                               "fawkes-v1.0, end-to-end on facenet-keras"),
    "facecure-baseline-e2e-lowkey": lambda r: (_rate(_one(attacked_rows(r, "e2e"), attack="lowkey")),
                                               "lowkey, end-to-end on facenet-keras"),
    "post-adaptive": lambda r: (_span(_rate(x) for x in adaptive_rows(r)),
                                "protected users, the three attacks, 1-NN on the aligned robust FaceNet"),
    "facecure-adaptive-nn-fawkes": lambda r: (_rate(_one(adaptive_rows(r), attack="fawkes-v1.0")),
                                              "fawkes-v1.0, 1-NN on the aligned robust FaceNet"),
    "facecure-adaptive-nn-lowkey": lambda r: (_rate(_one(adaptive_rows(r), attack="lowkey")),
                                              "lowkey, 1-NN on the aligned robust FaceNet"),
    "facecure-adaptive-clean-error": lambda r: (
        round(1 - adaptive_rows(r)[0]["clean_accuracy"], 4) if adaptive_rows(r) else None,
        "clean error of the aligned robust FaceNet, 1-NN"),
    "post-detection-precision": lambda r: (_detector(r, "precision"), "detector trained on all three, mean over attacks"),
    "post-detection-recall": lambda r: (_detector(r, "recall"), "detector trained on all three, mean over attacks"),
    "post-time-travel-celeb1m": lambda r: _time_travel(r, "fawkes-v1.0", "facenet-keras"),
    "facecure-oblivious-fawkes-own": lambda r: _time_travel(r, "fawkes-v1.0", "facenet-keras"),
    "facecure-oblivious-fawkes-magface": lambda r: _time_travel(r, "fawkes-v1.0", newest_model(r)),
    "facecure-oblivious-lowkey-magface": lambda r: _time_travel(r, "lowkey", newest_model(r)),
    "facecure-oblivious-lowkey-clip": _clip,
    "post-hybrid": lambda r: (
        f"clean accuracy {r['results']['threshold']['clean_accuracy']:.3f} vs "
        f"{r['results']['accurate']['clean_accuracy']:.3f} ({r['results']['accurate']['model']} alone), "
        f"protection {r['results']['threshold']['protection_rate']:.2f}",
        f"threshold hybrid of {r['results']['threshold']['model']}"),
}


def _text(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple):
        return f"{value[0]:.2f}" if value[0] == value[1] else f"{value[0]:.2f}-{value[1]:.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def compare(name: str, report: dict) -> list[dict]:
    """Each of the paper's figures for experiment ``name`` beside this run's closest number."""
    rows = []
    for f in paper.figures(name):
        ours, setting = THIS_RUN[f.key](report) if f.key in THIS_RUN else (None, "not measured here")
        rows.append({"claim": f.claim, "paper": f.value_text(), "paper's setting": f"{f.attack}; {f.model}; {f.classifier}",
                     "source": f"{paper.SOURCES[f.source]['title']}: {f.where}", "this run": _text(ours),
                     "this run's setting": setting})
    return rows


# The arms race in one picture ------------------------------------------------------------------

MOVES = ("none (notebook 01)", "adaptive model (02)", "detector filter (03)", "newer model (04)", "hybrid (05)")

# The paper's counterpart of each move, where its sources give one (figure keys per attack).
PAPER_MOVES = {
    ("none (notebook 01)", "fawkes-v1.0"): "facecure-baseline-nn-fawkes",
    ("none (notebook 01)", "lowkey"): "facecure-baseline-nn-lowkey",
    ("adaptive model (02)", "fawkes-v1.0"): "facecure-adaptive-nn-fawkes",
    ("adaptive model (02)", "lowkey"): "facecure-adaptive-nn-lowkey",
    ("newer model (04)", "fawkes-v1.0"): "facecure-oblivious-fawkes-magface",
    ("newer model (04)", "lowkey"): "facecure-oblivious-lowkey-magface",
}


def arms_race(reports: dict[str, dict]) -> list[dict]:
    """Per move of the trainer and attack: the 1-NN protection rate this run measured, and the
    paper's figure for the same move where its sources give one. Moves whose report is missing
    are left out."""
    ours: dict[tuple[str, str], tuple[float, str]] = {}
    if "poisoning" in reports:
        for r in attacked_rows(reports["poisoning"], "1nn"):
            ours[MOVES[0], r["attack"]] = (r["protection_rate"], "facenet-keras (attacked)")
    if "adaptive" in reports:
        for r in adaptive_rows(reports["adaptive"]):
            ours[MOVES[1], r["attack"]] = (r["protection_rate"], "aligned robust FaceNet")
    if "detection" in reports:
        for r in reports["detection"]["filter"]:
            caught = f"{r['cloaks_removed']}/{r['cloaks']} cloaks removed"
            ours[MOVES[2], r["attack"]] = (r["protection_rate_after"], f"facenet-keras, gallery filtered ({caught})")
    if "time-travel" in reports:
        newest = newest_model(reports["time-travel"])
        for r in pick(reports["time-travel"]["results"], model=newest, available=True):
            ours[MOVES[3], r["attack"]] = (r["protection_rate"], newest)
    if "hybrid" in reports:
        threshold = reports["hybrid"]["results"]["threshold"]
        for attack, rate in threshold["per_attack"].items():
            ours[MOVES[4], attack] = (rate, threshold["model"])
    rows = []
    for (move, attack), (rate, model) in ours.items():
        key = PAPER_MOVES.get((move, attack))
        f = paper.figure(key) if key else None
        rows.append({"move": move, "attack": attack, "protection_rate": rate, "model": model,
                     "paper": f.value if f else None, "paper_model": f.model if f else None,
                     "paper_source": f"{paper.SOURCES[f.source]['title']}: {f.where}" if f else None})
    return rows


def data_note(data: str, n: int | None = None) -> str:
    """One sentence on how the data set ``data`` (a report's ``settings["data"]``) shapes the
    figures, with ``n`` protected test photos behind each protection rate."""
    data = str(data)
    step = f" ({n} protected test photos: one photo moves a rate by {1 / n:.2f})" if n else ""
    if data == "orl":
        return ("ORL's 40 people are small grayscale faces of one lab, ten photos each: every model recognises "
                "them almost perfectly, and each protection rate rests on few photos" + step + ".")
    if "lfw" in data.lower():
        return ("LFW's celebrities are varied colour photos taken in the wild, closer to the paper's FaceScrub: "
                "clean accuracy is lower and rates rest on more photos" + step + ".")
    return f"Data from {data}: read each rate with the number of test photos behind it" + step + "."


# This run's key numbers, in words ------------------------------------------------------------

def _by_attack(rows, key="protection_rate") -> str:
    return " / ".join(f"{r[key]:.2f}" for r in rows) + " (" + " / ".join(r["attack"] for r in rows) + ")"


def _poisoning_headline(r: dict) -> str:
    rows = attacked_rows(r, "1nn")
    return (f"Against the attacked FaceNet (1-NN), the protected users' photos are misidentified at "
            f"{_by_attack(rows)}; unprotected users at {_by_attack(rows, 'unprotected_error').split(' (')[0]}.")


def _adaptive_headline(r: dict) -> str:
    rows = adaptive_rows(r)
    if not rows:
        return "No aligned robust model in this run."
    return (f"The robust FaceNet brings protection from {_by_attack(rows, 'protection_rate_before').split(' (')[0]} "
            f"down to {_by_attack(rows)}, at clean accuracy {rows[0]['clean_accuracy']:.3f} "
            f"(original {rows[0]['clean_accuracy_before']:.3f}).")


def _detection_headline(r: dict) -> str:
    rows = [x for x in r["results"] if len(x["trained_on"]) > 1]
    return (f"The detector trained on every attack flags the protected users' cloaks with precision "
            f"{_by_attack(rows, 'precision').split(' (')[0]} and recall {_by_attack(rows, 'recall')}.")


def _time_travel_headline(r: dict) -> str:
    newest = newest_model(r)
    rows = pick(r["results"], model=newest, available=True)
    clean = rows[0]["clean_error"] if rows else float("nan")
    both = pick(r.get("switching", []), model=newest, uploads="old+new")
    switch = ""
    if both:
        switch = (" With old and new cloaks both scraped, " + newest + " leaves "
                  + ", ".join(f"{x['old_attack']} -> {x['new_attack']}: {x['protection_rate']:.2f}" for x in both) + ".")
    return (f"On {newest}, which no cloak was made against, protection is {_by_attack(rows)} against its clean error "
            f"{clean:.2f}.{switch}")


def _hybrid_headline(r: dict) -> str:
    res = r["results"]
    return (f"The threshold hybrid ({res['threshold']['model']}, tau {res['threshold']['tau']:.2f}) keeps clean accuracy "
            f"{res['threshold']['clean_accuracy']:.3f} ({res['accurate']['model']} alone: "
            f"{res['accurate']['clean_accuracy']:.3f}) at protection {res['threshold']['protection_rate']:.2f} "
            f"(the robust model alone: {res['robust']['protection_rate']:.2f}).")


HEADLINES = {"poisoning": _poisoning_headline, "adaptive": _adaptive_headline, "detection": _detection_headline,
             "time-travel": _time_travel_headline, "hybrid": _hybrid_headline}


def headline(name: str, report: dict, note: bool = True) -> str:
    """This run's key numbers for experiment ``name`` in a sentence or two, then (``note``) the
    data set's note."""
    settings = report.get("settings", {})
    if not note:
        return HEADLINES[name](report)
    return f"{HEADLINES[name](report)}\n{data_note(settings.get('data', '?'), settings.get('protected_test_photos'))}"


def users_compared_text(report: dict, recipe: str = "align", classifier: str = "1nn") -> str:
    """Notebook 02's honest check in a sentence: the ``recipe``'s selected model's protection
    per attack on the setting's protected users and on people outside the setting (the
    original model's in brackets), and who those people are."""
    rows = [r for r in report.get("users_compared", []) if r["classifier"] == classifier]
    groups = dict.fromkeys(r["users"] for r in rows)
    parts = []
    for users in groups:
        robust = {r["attack"]: r for r in rows if r["users"] == users and r["recipe"] == recipe}
        original = {r["attack"]: r for r in rows if r["users"] == users and r["recipe"] is None}
        rates = ", ".join(f"{a} {r['protection_rate']:.2f} ({original[a]['protection_rate']:.2f})"
                          for a, r in robust.items())
        accuracy = next(iter(robust.values()))["clean_accuracy"]
        parts.append(f"on {users}: {rates}; clean accuracy {accuracy:.3f}")
    never = report["settings"].get("chosen_on", {}).get("never chosen on", "nobody outside the setting was scored")
    return (f"Robust FaceNet ({recipe}), {classifier} protection (original's in brackets) "
            + "; ".join(parts) + f".\nPeople outside the setting: {never}.")


def your_photo_headline(report: dict) -> str:
    """Notebook 06 in a sentence: which models still name the user once the cloaked photos are posted."""
    answered = [r for r in report["results"] if r["available"]]
    named = [f"{r['model']} ({r['model_year']})" for r in answered if r["recognised_cloaked"] >= 0.5]
    fooled = [f"{r['model']} ({r['model_year']})" for r in answered if r["recognised_cloaked"] < 0.5]
    s = report["settings"]
    return (f"{s['attack']} ({s['mode']}), {s['posted']} photo(s) posted, {s['questions']} asked about: "
            f"still named by {', '.join(named) or 'no model'}; fooled: {', '.join(fooled) or 'no model'}.")


# What a reader needs of a run's settings, in order, with labels; the rest stays in the JSON.
SETTING_LABELS = (
    ("data", "Data"), ("profile", "Profile"), ("identities", "People"), ("photos", "Photos"),
    ("protected_users", "Protected users"), ("protected_test_photos", "Protected users' test photos"),
    ("modes", "The users' cloaks (tool: preset)"), ("attack", "Tool"), ("mode", "Preset"),
    ("attack_models", "Models the cloaks attack"), ("public_identities", "Public people the trainer cloaks"),
    ("public_modes", "The trainer's cloaks (tool: preset)"), ("chosen_on", "Settings chosen on"),
    ("train_identities", "People the detector learns from"),
    ("posted", "Photos posted"), ("questions", "Photos the trainer meets later"), ("seconds", "Time taken (s)"),
)


def _setting_text(value) -> str:
    if isinstance(value, dict):
        return " · ".join(f"{k}: {_setting_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_table(settings: dict) -> list[dict]:
    """A run's settings as short rows {setting, value} a reader can take in at a glance, never a
    raw dict: the data, its size, who is protected, the tools' presets, the time taken."""
    return [{"setting": label, "value": _setting_text(settings[key])}
            for key, label in SETTING_LABELS if key in settings]
