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


def compare_reports(before: dict, after: dict) -> list[dict]:
    """Per attack, the attacked FaceNet's 1-NN figures of both reports side by side."""
    for key in ("data", "profile", "seed", "protected"):
        if before["settings"].get(key) != after["settings"].get(key):
            raise ValueError(f"the reports differ in {key}: {before['settings'].get(key)} and {after['settings'].get(key)}")
    b, a = ({r["attack"]: r for r in attacked_rows(rep, "1nn")} for rep in (before, after))
    return [{"attack": name,
             "protection (before, after)": f"{b[name]['protection_rate']:.2f}, {a[name]['protection_rate']:.2f}",
             "unprotected users' error": f"{b[name]['unprotected_error']:.3f}, {a[name]['unprotected_error']:.3f}",
             "DSSIM mean": f"{b[name]['dssim_mean']:.5f}, {a[name]['dssim_mean']:.5f}",
             "L-inf max (/255)": f"{b[name]['linf_max_255']}, {a[name]['linf_max_255']}"}
            for name in b if name in a]


def compare_caches(before: str, after: str) -> dict:
    """How many cloak entries both caches hold, and how many have every array equal to the bit."""
    first, second = Cache(before), Cache(after)
    keys = sorted({p.stem for p in (first.root / "cloaks").glob("*.npz")}
                  & {p.stem for p in (second.root / "cloaks").glob("*.npz")})
    equal = 0
    for key in keys:
        x, y = first.load("cloaks", key), second.load("cloaks", key)
        equal += x is not None and y is not None and x.keys() == y.keys() and all(
            x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]) for k in x)
    return {"shared_entries": len(keys), "equal_to_the_bit": int(equal)}


def section(title: str, rows: list[dict], caches: dict | None, meta: dict, settings: dict) -> str:
    lines = results_page.heading(title, meta) + [
        f"Experiment 01 run twice from an empty cache, with the attacks' code before ({meta['before']}) and "
        f"after ({meta['after']}) a change meant to keep the cloaks: protection on the attacked FaceNet "
        f"(1-NN, {settings.get('protected_test_photos')} test photos of {settings.get('protected_users')} "
        f"protected users), the unprotected users' error and the cloaks' size, before and after."
        + (f" Cloak cache entries both runs wrote: {caches['shared_entries']}, equal to the bit: "
           f"{caches['equal_to_the_bit']}." if caches else ""), ""]
    return "\n".join(lines) + "\n" + results_page.markdown_table(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="`explainer experiment poisoning --json` with the code before")
    parser.add_argument("after", help="the same, with the code after")
    parser.add_argument("--caches", nargs=2, metavar=("BEFORE", "AFTER"), help="the two runs' cache folders")
    parser.add_argument("--label-before", default="before")
    parser.add_argument("--label-after", default="after")
    parser.add_argument("--markdown", metavar="PAGE", help="write the comparison into the results page")
    args = parser.parse_args(argv)
    before, after = (json.loads(Path(p).read_text()) for p in (args.before, args.after))
    rows = compare_reports(before, after)
    caches = compare_caches(*args.caches) if args.caches else None
    print(results_page.markdown_table(rows))
    if caches:
        print(f"cloak entries in both caches: {caches['shared_entries']}, equal to the bit: {caches['equal_to_the_bit']}")
    if args.markdown:
        import datetime
        settings = after["settings"]
        title = "cloak strength before and after: " + results_page.section_title(settings["data"], settings["profile"])
        meta = {"measured": datetime.date.today().isoformat(), "machine": results_page.machine(),
                "before": args.label_before, "after": args.label_after, "by": "bench/cloak_strength.py"}
        results_page.update_page(args.markdown, title, section(title, rows, caches, meta, settings))
        print(f"wrote {title} into {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
