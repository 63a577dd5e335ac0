"""The adaptive defence against the defender's number of clean/cloaked pairs.

    python bench/adaptive_pairs.py --data ../shared/data/lfw-deepfunneled-20 --shares 0.4 --json
    python bench/adaptive_pairs.py --data ../shared/data/lfw-deepfunneled-20 --shares 0.4 0.6 \
        --lowkey-share 0 --epochs 10 --lr 2.5e-4 --json   # the earlier recipe
    python bench/adaptive_pairs.py --data ../shared/data/lfw-deepfunneled-20 --shares 0.4 \
        --variants default epochs=12 mirrored mirrored,epochs=3 --markdown docs/results.md   # candidates

For each ``share`` of every public user's scraped photos (at most the profile's
``public_per_identity``), the defender cloaks them with every attack (the profile's public modes
and steps) and trains the aligned robust FaceNet from the deepest of ``defences.STARTS``;
``defences.lowkey_extra`` adds LowKey pairs only, from the training users' further scraped
photos up to ``--lowkey-share`` of each one's (no cap); the held-out users stay as ``share``
chose them, so the validation figures stay comparable. The defaults of ``--lowkey-share``,
``--epochs`` and ``--lr`` are the profile's (what ``explainer experiment adaptive`` trains).
Printed per share: pairs per attack, training seconds, clean accuracy (1-NN, nobody protected)
and, per attack, the protection rate on held-out public users (what a defender can see) and on
the protected users, before and after, and on people outside the setting (``Scenario.outside``,
when the data has them: people no setting was chosen on). Everything is cached; cold, the defender's cloaks cost
about 18 minutes per 140 LFW photos on 2 cores. Nothing is asserted: this prints figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from explainer import attacks, defences, experiments, models, profiles, protocol


def measure(data: str, profile: str, shares: list[float], seed: int = 0, progress: bool = True,
            lowkey_share: float | None = None, epochs: int | None = None, lr: float | None = None,
            mirrored: bool = False, flip: bool = False) -> list[dict]:
    scenario = experiments.Scenario(data, profile, seed, progress=progress)
    setting, cloaks = experiments.cloaked_setting(scenario)
    split, labels = setting.split, setting.labels
    protected_idx = split.protected_train(labels)
    resolved = profiles.resolve(profile)
    epochs = epochs or resolved.training.robust_epochs  # resolved here so every row reports them
    lr = lr or resolved.training.robust_lr
    original = lambda c: models.embeddings("facenet-keras", c, progress=False)  # noqa: E731
    rows = []
    for share in shares:
        budget = resolved.defender
        public = defences.public_data(setting, budget.per_identity, budget.validation_fraction, seed, share)
        n = len(public.train)
        pub = {a: defences.public_cloaks(setting, public, a, profile, seed, progress) for a in attacks.ATTACKS}
        n_extra = len(defences.lowkey_extra_photos(setting, public, profile, seed, lowkey_share))
        t = time.perf_counter()
        robust = experiments.adaptive_model(scenario, public, pub, "align", defences.STARTS[-1],
                                            lowkey_share=lowkey_share, epochs=epochs, lr=lr, mirrored=mirrored,
                                            flip=flip)
        row = {"share": share, "pairs_per_attack": n, "extra_lowkey_pairs": n_extra, "epochs": epochs, "lr": lr,
               "mirrored": mirrored, "flip": flip,
               "per_identity": round(n / len(public.train_identities), 2),
               "train_s": round(robust.train_s, 1), "wall_s": round(time.perf_counter() - t, 1), "attacks": {}}
        for name, embed in (("before", original), ("after", lambda c: robust.embeddings(c))):
            clean = embed(setting.canvases)
            row[f"clean_accuracy_{name}"] = round(1 - protocol.clean_error(split, labels, clean, "1nn", seed), 4)
            for a in attacks.ATTACKS:
                test = protocol.evaluate_embeddings(split, labels, clean, dict(zip(protected_idx.tolist(),
                                                                                   embed(cloaks[a].cloaked))), "1nn", seed)
                val = defences.validation_scores(setting, public, clean, embed(pub[a].cloaked[n:]), seed=seed)
                row[f"validation_clean_accuracy_{name}"] = round(val["clean_accuracy"], 4)  # what select() weighs
                row["attacks"].setdefault(a, {}).update({f"validation_protection_{name}": round(val["protection_rate"], 4),
                                                         f"protection_{name}": round(test.protection_rate, 4)})
            if scenario.outside is not None:  # people nothing was chosen on: reported, never chosen by
                for (a, _), v in experiments.outside_scores(scenario, embed).items():
                    row["attacks"][a][f"outside_protection_{name}"] = round(v["protection_rate"], 4)
                    row[f"outside_clean_accuracy_{name}"] = round(v["clean_accuracy"], 4)
        for name in ("before", "after"):  # the figure select() ranks candidates by
            row[f"validation_protection_mean_{name}"] = round(
                sum(v[f"validation_protection_{name}"] for v in row["attacks"].values()) / len(row["attacks"]), 4)
        rows.append(row)
    return rows


def parse_variant(spec: str) -> dict:
    """``"mirrored,epochs=3"`` -> ``{"mirrored": True, "epochs": 3}``; ``"default"`` -> ``{}``.
    ``mirrored`` adds every pair's mirror image (twice the steps); ``flip`` mirrors each pair at
    random at every step (``defences.train_robust(flip=True)``, the same steps)."""
    kwargs = {}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        if key == "default":
            continue
        if key in ("mirrored", "flip"):
            kwargs[key] = True
        elif key in ("epochs", "lr", "lowkey_share"):
            kwargs[key] = int(value) if key == "epochs" else float(value)
        else:
            raise SystemExit(f"unknown key {key!r} in variant {spec!r} (epochs, lr, lowkey_share, mirrored, flip)")
    return kwargs


def select_variant(rows: list[dict], budget_s: float) -> dict:
    """The rule, on held-out public users only: among candidates that train within ``budget_s``,
    ``defences.select`` (lowest mean validation protection, validation clean accuracy within 2
    points of the original model's). The protected users and the people outside the setting
    play no part."""
    affordable = [r for r in rows if r["train_s"] <= budget_s] or rows
    scored = [{"row": r, "validation_protection": r["validation_protection_mean_after"],
               "validation_clean_accuracy": r["validation_clean_accuracy_after"]} for r in affordable]
    return defences.select(scored, rows[0]["validation_clean_accuracy_before"])["row"]


def write_section(page: str, data: str, profile: str, rows: list[dict], budget_s: float) -> None:
    """The candidates as a section of the results page: what the rule saw, what it picked, and
    what each candidate gives on the setting's protected users and on people outside it."""
    import datetime
    from explainer import results_page
    names = list(rows[0]["attacks"])

    def rates(r, key):
        return " / ".join(f"{r['attacks'][a].get(key, float('nan')):.2f}" for a in names)
    table = [{"candidate": r["variant"], "train s": r["train_s"],
              "held-out public users: protection (mean)": f"{rates(r, 'validation_protection_after')} "
                                                          f"({r['validation_protection_mean_after']:.3f})",
              "held-out: clean accuracy": f"{r['validation_clean_accuracy_after']:.3f}",
              "selected": "yes" if r["selected"] else "",
              "setting's protected users": rates(r, "protection_after"),
              "people outside the setting": rates(r, "outside_protection_after"),
              "outside: clean accuracy": f"{r.get('outside_clean_accuracy_after', float('nan')):.3f}"} for r in rows]
    title = f"adaptive recipe candidates: {results_page.section_title(data, profile)}"
    meta = {"measured": datetime.date.today().isoformat(), "machine": results_page.machine(),
            "by": "bench/adaptive_pairs.py --variants " + " ".join(r["variant"] for r in rows)}
    text = "\n".join(results_page.heading(title, meta)) + "\n" + (
        f"The aligned recipe from `conv2d_2b`, varied. Rates are 1-NN protection per attack ({', '.join(names)}). "
        f"The rule picks on the held-out public users only: among candidates that train within {budget_s:.0f} s, "
        f"the lowest mean protection whose clean accuracy is within 2 points of the original model's "
        f"({rows[0]['validation_clean_accuracy_before']:.3f}). The last three columns played no part in the choice. "
        f"The original model's protection: {rates(rows[0], 'protection_before')} on the setting's protected users, "
        f"{rates(rows[0], 'outside_protection_before')} on the people outside it, with clean accuracy "
        f"{rows[0].get('outside_clean_accuracy_before', float('nan')):.3f}.\n\n"
        ) + results_page.markdown_table(table)
    results_page.update_page(page, title, text)
    print(f"wrote {title} into {page}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="orl")
    parser.add_argument("--profile", default="classroom", choices=list(profiles.PROFILES))
    parser.add_argument("--shares", type=float, nargs="+", default=[0.4, 0.6])
    parser.add_argument("--lowkey-share", type=float, default=None,
                        help="LowKey pairs from this share of each training user's scraped photos (no cap; "
                             "default: the profile's public_lowkey_share, 0 for none)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's robust_epochs")
    parser.add_argument("--lr", type=float, default=None, help="default: the profile's robust_lr")
    parser.add_argument("--mirrored", action="store_true", help="add every pair's mirror image (augmentation)")
    parser.add_argument("--variants", nargs="+", metavar="SPEC",
                        help="candidate recipes at the first share, e.g. default epochs=12 mirrored mirrored,epochs=3 "
                             "(keys: epochs, lr, lowkey_share, mirrored, flip); the rule of select_variant picks one")
    parser.add_argument("--budget-s", type=float, default=300.0, help="training seconds a candidate may take")
    parser.add_argument("--markdown", metavar="PAGE", help="with --variants: write them into the results page")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.variants:
        rows = [dict(measure(args.data, args.profile, args.shares[:1], args.seed, sys.stderr.isatty(), **kwargs)[0],
                     variant=spec) for spec, kwargs in ((v, parse_variant(v)) for v in args.variants)]
        chosen = select_variant(rows, args.budget_s)
        for r in rows:
            r["selected"] = r is chosen
        if args.markdown:
            write_section(args.markdown, args.data, args.profile, rows, args.budget_s)
    else:
        rows = measure(args.data, args.profile, args.shares, args.seed, sys.stderr.isatty(), args.lowkey_share,
                       args.epochs, args.lr, args.mirrored)
    if args.json:
        print(json.dumps({"data": args.data, "profile": args.profile, "seed": args.seed, "rows": rows}, indent=2))
    else:
        for r in rows:
            per = " | ".join(f"{a} {v['protection_before']:.2f} -> {v['protection_after']:.2f} "
                             f"(held-out {v['validation_protection_after']:.2f}"
                             + (f", outside {v['outside_protection_after']:.2f}" if "outside_protection_after" in v else "")
                             + ")" for a, v in r["attacks"].items())
            print(f"share {r['share']} (+{r['extra_lowkey_pairs']} LowKey), {r['epochs']} epochs, lr {r['lr']}: "
                  f"{r['pairs_per_attack']} pairs/attack, train {r['train_s']} s, "
                  f"clean {r['clean_accuracy_before']:.3f} -> {r['clean_accuracy_after']:.3f} | {per}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
