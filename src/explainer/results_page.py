"""The results page (``docs/results.md``): one table per data set of what the experiments
measured, beside the paper's figures, written by ``bench/experiments.py --markdown``; and the
preparation time of the notebooks, written by ``bench/notebooks.py --markdown``."""
from __future__ import annotations

import os
import platform
from pathlib import Path

from . import paper
from .protocol import OUTSIDE_USERS
from .results import adaptive_rows, attacked_rows, newest_model, pick, data_note, source_id


ATTACK_COLUMNS = ("fawkes-v0.3", "fawkes-v1.0", "lowkey")
PAGE_HEADER = """# Results

What the notebooks measured, one section per data set, written by
`bench/experiments.py --data DATA --profile PROFILE --markdown docs/results.md` (each run replaces
its own data set's section). Rates are 1-NN protection rates on the protected users' clean test
photos unless a row says otherwise; the "paper" column gives the figures the paper's authors
reported for the same measure (see `explainer.paper` for the exact wording of each source).
The "preparation" sections, written by `bench/notebooks.py --floor --markdown docs/results.md`,
say how long the notebooks took to run, cold and warm; the "cloak strength" sections, written by
`bench/cloak_strength.py`, compare experiment 01 run with the attacks' code before and after a
change meant to keep the cloaks.
Where a data set has people outside the setting, notebook 02's models are scored again with the
protected users swapped for them (rows "on N people outside the setting"): people whom no
setting was ever chosen on. The adaptive recipe's fixed settings (depths tried, learning rate,
extra LowKey pairs) were chosen over LFW `classroom` runs in which that setting's protected
users' results were visible: there, read the plain "robust FaceNet" row as tuned and the
"outside the setting" row as the honest one. The `classroom` epochs were then chosen on held-out
public users only (the "adaptive recipe candidates" section). The deployed robust model is the
chosen recipe trained once more with the held-out users' pairs as well (`refit`): those users
cannot judge it any more, the people outside the setting can.
"""


def _paper_text(*keys: str) -> str:
    parts = []
    for key in keys:
        f = paper.figure(key)
        who = "post" if f.source == "post" else "FaceCure"
        attack = "" if f.attack in ("all three", "both") else f" {f.attack}"
        parts.append(f"{who}{attack} {f.value_text()} ({f.model})")
    return "; ".join(parts)


def summary_rows(reports: dict[str, dict]) -> list[dict]:
    """The key figures of a set of reports, one row per measure with a column per attack and the
    paper's figures for the same measure: the results page's table for one data set."""
    rows = []

    def add(experiment, measure, values: dict, paper_keys=()):
        rows.append({"experiment": experiment, "measure": measure,
                     **{a: values.get(a, "") for a in ATTACK_COLUMNS}, "paper": _paper_text(*paper_keys)})
    if "poisoning" in reports:
        attacked = {r["attack"]: r for r in attacked_rows(reports["poisoning"], "1nn")}
        add("01 poisoning", "protection, attacked FaceNet (1-NN)",
            {a: f"{r['protection_rate']:.2f}" for a, r in attacked.items()},
            ("facecure-baseline-nn-fawkes", "facecure-baseline-nn-lowkey", "post-baseline-protected"))
        add("01 poisoning", "unprotected users' error",
            {a: f"{r['unprotected_error']:.2f}" for a, r in attacked.items()}, ("post-baseline-unprotected",))
    if "adaptive" in reports:
        aligned = {r["attack"]: r for r in adaptive_rows(reports["adaptive"])}
        add("02 adaptive", "protection, robust FaceNet (1-NN)",
            {a: f"{r['protection_rate']:.2f}" for a, r in aligned.items()},
            ("facecure-adaptive-nn-fawkes", "facecure-adaptive-nn-lowkey", "post-adaptive"))
        add("02 adaptive", "clean error, robust (original)",
            {a: f"{1 - r['clean_accuracy']:.3f} ({1 - r['clean_accuracy_before']:.3f})" for a, r in aligned.items()},
            ("facecure-adaptive-clean-error",))
        for measure, values in _outside_rows(reports["adaptive"]):
            add("02 adaptive", measure, values)
    if "detection" in reports:
        both = {r["attack"]: r for r in reports["detection"]["results"] if len(r["trained_on"]) > 1}
        add("03 detection", "precision / recall, detector of all attacks",
            {a: f"{r['precision']:.2f} / {r['recall']:.2f}" for a, r in both.items()},
            ("post-detection-precision", "post-detection-recall"))
    if "time-travel" in reports:
        report = reports["time-travel"]
        newest = newest_model(report)
        earlier = sorted({(r["model_year"], r["model"]) for r in pick(report["results"], available=True)
                          if r["model"] != newest})
        for year, model in earlier:  # the attacked era and the WebFace model, in publication order
            on_model = {r["attack"]: r for r in pick(report["results"], model=model, available=True)}
            add("04 time travel", f"protection on {model} ({year}; its clean error; * attacked)",
                {a: f"{r['protection_rate']:.2f} ({r['clean_error']:.2f}){'*' if r['attacked'] else ''}"
                 for a, r in on_model.items()})
        on_newest = {r["attack"]: r for r in pick(report["results"], model=newest, available=True)}
        add("04 time travel", f"protection on {newest} (its clean error)",
            {a: f"{r['protection_rate']:.2f} ({r['clean_error']:.2f})" for a, r in on_newest.items()},
            ("facecure-oblivious-fawkes-magface", "facecure-oblivious-lowkey-magface", "facecure-oblivious-lowkey-clip"))
        for r in pick(report.get("switching", []), model=newest, uploads="old+new"):
            add("04 time travel", f"switching {r['old_attack']} -> {r['new_attack']}: old and new scraped, on {newest}",
                {r["new_attack"]: f"{r['protection_rate']:.2f}"})
    if "hybrid" in reports:
        res = reports["hybrid"]["results"]
        add("05 hybrid", f"threshold hybrid: protection (clean accuracy {res['threshold']['clean_accuracy']:.3f}, "
                         f"accurate model alone {res['accurate']['clean_accuracy']:.3f})",
            {a: f"{v:.2f}" for a, v in res["threshold"]["per_attack"].items()}, ("post-hybrid",))
    return rows


def _outside_rows(report: dict) -> list[tuple[str, dict]]:
    """The aligned model's 1-NN protection and clean error on the people outside the setting
    (the original model's in brackets), as (measure, values by attack); none without them."""
    outside = {(r["attack"], r["recipe"]): r for r in report.get("users_compared", [])
               if r["classifier"] == "1nn" and r["users"] == OUTSIDE_USERS}
    if not outside:
        return []
    never = report["settings"]["chosen_on"].get("never chosen on", "").split(" (")[0]
    aligned = {a: (r, outside[a, None]) for (a, recipe), r in outside.items() if recipe == "align"}
    return [(f"protection, robust FaceNet (1-NN), on {never} (original's in brackets)",
             {a: f"{r['protection_rate']:.2f} ({o['protection_rate']:.2f})" for a, (r, o) in aligned.items()}),
            (f"clean error, robust (original), with {never}",
             {a: f"{1 - r['clean_accuracy']:.3f} ({1 - o['clean_accuracy']:.3f})" for a, (r, o) in aligned.items()})]


def markdown_table(rows: list[dict]) -> str:
    """A list of same-keyed dicts as a Markdown table."""
    if not rows:
        return "_no results recorded_\n"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]).replace("|", "/") for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown_section(title: str, reports: dict[str, dict], meta: dict) -> str:
    """One data set's section of the results page: how it was measured, then its table."""
    settings = next(iter(reports.values()))["settings"] if reports else {}
    lines = heading(title, meta)
    if settings.get("profile") == "ci":
        lines += ["The `ci` profile cloaks with the tools' weakest modes and a 10-step LowKey: a check that "
                  "everything runs, not the paper's settings (`classroom` and `full` use them).", ""]
    if settings:
        lines += [f"{settings.get('identities')} identities, {settings.get('photos')} photos, "
                  f"{settings.get('protected_users')} protected users with {settings.get('protected_test_photos')} "
                  f"test photos behind each protection rate. "
                  + data_note(settings.get("data", "?"), settings.get("protected_test_photos")), ""]
    return "\n".join(lines) + "\n" + markdown_table(summary_rows(reports))


def section_title(data: str, profile: str) -> str:
    """A data set's section title: the data's folder name and the profile, e.g. ``orl (classroom)``."""
    return f"{source_id(data).rsplit('/', 1)[-1]} ({profile})"


def heading(title: str, meta: dict) -> list[str]:
    """A section's heading lines: its title, then how and where it was measured."""
    return [f"## {title}", "", "_" + ", ".join(f"{k}: {v}" for k, v in meta.items()) + "_", ""]


def update_page(path, title: str, section: str, header: str = PAGE_HEADER) -> None:
    """Write ``section`` into the page at ``path`` under ``## title``, replacing that data set's
    previous section and keeping the others."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else header
    parts = text.split("\n## ")
    head, sections = parts[0], {p.split("\n", 1)[0]: "## " + p for p in parts[1:]}
    sections[title] = section.rstrip() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head.rstrip() + "\n\n" + "\n".join(sections[k] for k in sorted(sections)), encoding="utf-8")


def preparation_section(title: str, report: dict, meta: dict) -> str:
    """The teacher's preparation time (``bench/notebooks.py``'s report) as a section of the results
    page: the whole sequence cold and warm, the cloaking floor, and one row per notebook."""
    def fmt(v):
        return "" if v is None else f"{v:g}"
    lines = heading(title, meta) + [
             "How long the notebooks take to run one after another: **cold** on an empty cache (the "
             "preparation the day before), **warm** on the cache the cold run filled (what runs in class). "
             "The **floor** is the bare forward and backward passes that the cloaks need (photos x steps x "
             "seconds per image-step, for every cloak the profile computes): with these models, steps and "
             "photos, the preparation cannot take less on this machine.", ""]
    totals = [{"measure": "cold (s)", "value": fmt(report.get("cold_s"))},
              {"measure": "warm (s)", "value": fmt(report.get("warm_s"))},
              {"measure": "cloaking floor (s)", "value": fmt(report.get("floor_s"))},
              {"measure": "cold / floor", "value": fmt(report.get("cold_over_floor"))},
              {"measure": "peak memory (GB, resident, kernels included)", "value": fmt(report.get("peak_rss_gb"))},
              {"measure": "cache written (GB)", "value": fmt(report.get("cache_gb"))}]
    lines += [markdown_table([t for t in totals if t["value"]])]
    rows = [{"notebook": name, "cold (s)": fmt(t.get("cold_s")), "warm (s)": fmt(t.get("warm_s")),
             "cold peak memory (GB)": fmt(t.get("cold_peak_rss_gb"))}
            for name, t in sorted(report.get("notebooks", {}).items())]
    return "\n".join(lines) + "\n" + markdown_table(rows)


def machine() -> str:
    """The processor, cores and device the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return f"{cpu}, {os.cpu_count()} cores, {device}, torch {torch.__version__}"
