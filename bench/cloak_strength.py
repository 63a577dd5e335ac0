"""Cloaks equal in strength before and after a change to the attacks' code: experiment 01's
figures from two reports of the same data and profile, and every cloak the two caches share,
compared array by array.

    git worktree add /tmp/before REV          # the code before the change
    EXPLAINER_CACHE=/tmp/c_before PYTHONPATH=/tmp/before/src python -m explainer experiment poisoning \
        --profile classroom --data ../shared/data/lfw-deepfunneled-20 --json > before.json
    EXPLAINER_CACHE=/tmp/c_after python -m explainer experiment poisoning \
        --profile classroom --data ../shared/data/lfw-deepfunneled-20 --json > after.json
    python bench/cloak_strength.py before.json after.json --caches /tmp/c_before /tmp/c_after \
        --label-before REV --label-after HEAD --markdown docs/results.md

Each report must start from an empty cache (or the "after" run reads the "before" run's cloaks:
a change that keeps the cloaks' cache keys is meant to give the same cloaks). Printed per attack,
on the attacked FaceNet (1-NN): the protection rate, the unprotected users' error, the cloaks'
mean DSSIM and largest L-inf, before and after; with ``--caches``, how many cloak entries both
caches hold and how many are equal to the bit. Nothing is asserted: this prints figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from explainer import results_page
from explainer.cache import Cache
from explainer.results import attacked_rows


def compare_reports(before: dict, after: dict | None) -> list[dict]:
    """Per attack, the attacked FaceNet's 1-NN figures of both reports side by side (the
    "before" report's alone when there is no "after" one: then the caches say the rest)."""
    for key in ("data", "profile", "seed", "protected"):
        if after is not None and before["settings"].get(key) != after["settings"].get(key):
            raise ValueError(f"the reports differ in {key}: "
                             f"{before['settings'].get(key)} and {after['settings'].get(key)}")
    b, a = ({r["attack"]: r for r in attacked_rows(rep, "1nn")} if rep else None for rep in (before, after))
    label = " (before, after)" if a else " (before)"

    def both(name, key, fmt):
        return ", ".join(format(rows[name][key], fmt) for rows in (b, a) if rows)
    return [{"attack": name, "protection" + label: both(name, "protection_rate", ".2f"),
             "unprotected users' error": both(name, "unprotected_error", ".3f"),
             "DSSIM mean": both(name, "dssim_mean", ".5f"), "L-inf max (/255)": both(name, "linf_max_255", "")}
            for name in b if a is None or name in a]


def compare_caches(before: str, after: str) -> dict:
    """How many cloak entries each cache holds, how many both, and how many of those have every
    array equal to the bit."""
    first, second = Cache(before), Cache(after)
    held = [{p.stem for p in (c.root / "cloaks").glob("*.npz")} for c in (first, second)]
    keys = sorted(held[0] & held[1])
    equal = 0
    for key in keys:
        x, y = first.load("cloaks", key), second.load("cloaks", key)
        equal += x is not None and y is not None and x.keys() == y.keys() and all(
            x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]) for k in x)
    return {"before_entries": len(held[0]), "after_entries": len(held[1]), "shared_entries": len(keys),
            "equal_to_the_bit": int(equal)}


def section(title: str, rows: list[dict], caches: dict | None, meta: dict, settings: dict, both_reports: bool) -> str:
    lines = results_page.heading(title, meta) + [
        f"Experiment 01 run from an empty cache with the attacks' code before ({meta['before']}) and, on another "
        f"empty cache, the code after ({meta['after']}) a change meant to keep the cloaks: protection on the attacked "
        f"FaceNet (1-NN, {settings.get('protected_test_photos')} test photos of {settings.get('protected_users')} "
        f"protected users), the unprotected users' error and the cloaks' size"
        + (", before and after." if both_reports else ", before; the run after computed the cloaks only.")
        + (f" Cloak cache entries (one per attack and batch of photos): the run before wrote "
           f"{caches['before_entries']}, the run after {caches['after_entries']}; both: {caches['shared_entries']}, "
           f"equal to the bit: {caches['equal_to_the_bit']}." if caches else ""), ""]
    return "\n".join(lines) + "\n" + results_page.markdown_table(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="`explainer experiment poisoning --json` with the code before")
    parser.add_argument("after", nargs="?", help="the same, with the code after (without it: the before report's "
                                                 "figures and, with --caches, the cloaks compared)")
    parser.add_argument("--caches", nargs=2, metavar=("BEFORE", "AFTER"), help="the two runs' cache folders")
    parser.add_argument("--label-before", default="before")
    parser.add_argument("--label-after", default="after")
    parser.add_argument("--markdown", metavar="PAGE", help="write the comparison into the results page")
    args = parser.parse_args(argv)
    before, after = (json.loads(Path(p).read_text()) if p else None for p in (args.before, args.after))
    rows = compare_reports(before, after)
    caches = compare_caches(*args.caches) if args.caches else None
    print(results_page.markdown_table(rows))
    if caches:
        print(f"cloak entries before {caches['before_entries']}, after {caches['after_entries']}, in both caches: "
              f"{caches['shared_entries']}, equal to the bit: {caches['equal_to_the_bit']}")
    if args.markdown:
        import datetime
        settings = (after or before)["settings"]
        title = "cloak strength before and after: " + results_page.section_title(settings["data"], settings["profile"])
        meta = {"measured": datetime.date.today().isoformat(), "machine": results_page.machine(),
                "before": args.label_before, "after": args.label_after, "by": "bench/cloak_strength.py"}
        results_page.update_page(args.markdown, title, section(title, rows, caches, meta, settings, after is not None))
        print(f"wrote {title} into {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
