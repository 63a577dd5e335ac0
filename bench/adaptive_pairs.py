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
import dataclasses
import json
import sys
import time

import numpy as np

from explainer import attacks, defences, experiments, models, profiles, protocol


def measure(data: str, profile: str, shares: list[float], seed: int = 0, progress: bool = True,
            lowkey_share: float | None = None, epochs: int | None = None, lr: float | None = None,
            mirrored: bool = False, flip: bool = False, train_seed: int | None = None, lowkey_steps: int | None = None,
            held_out_lowkey_steps: int | None = None, tta: bool = False, ensemble: int = 1,
            refit: bool = False, users: float = 1.0) -> list[dict]:
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
        pub = {a: defences.public_cloaks(setting, public, a, profile, seed, progress,
                                         steps=lowkey_steps if a == attacks.HARDEST else None) for a in attacks.ATTACKS}
        held_out = {a: c.cloaked[n:] for a, c in pub.items()}  # the held-out users' cloaks the rule scores on
        if held_out_lowkey_steps:
            held_out[attacks.HARDEST] = defences.public_cloaks(setting, public, attacks.HARDEST, profile, seed, progress,
                                                               steps=held_out_lowkey_steps).cloaked[n:]
        fit_on, fit_cloaks = trained_on(public, pub, labels, refit, users, seed)
        n_extra = len(defences.lowkey_extra_photos(setting, fit_on, profile, seed, lowkey_share))
        t = time.perf_counter()
        first_seed = seed if train_seed is None else train_seed
        members = [experiments.adaptive_model(scenario, fit_on, fit_cloaks, "align", defences.STARTS[-1],
                                              lowkey_share=lowkey_share, epochs=epochs, lr=lr, mirrored=mirrored,
                                              flip=flip, train_seed=train_seed if k == 0 else first_seed + k)
                   for k in range(ensemble)]
        row = {"share": share, "pairs_per_attack": len(fit_on.train), "extra_lowkey_pairs": n_extra, "epochs": epochs, "lr": lr,
               "mirrored": mirrored, "flip": flip, "tta": tta, "ensemble": ensemble, "refit": refit,
               "training_users": int(len(fit_on.train_identities)), "train_seed": first_seed,
               "lowkey_steps": lowkey_steps or resolved.defender.steps[attacks.HARDEST],
               "held_out_lowkey_steps": held_out_lowkey_steps or lowkey_steps or resolved.defender.steps[attacks.HARDEST],
               "per_identity": round(len(fit_on.train) / len(fit_on.train_identities), 2),
               "train_s": round(sum(m.train_s for m in members), 1), "wall_s": round(time.perf_counter() - t, 1), "attacks": {}}
        after = ((lambda c: averaged([m.embeddings for m in members], c, tta)) if tta or ensemble > 1
                 else (lambda c: members[0].embeddings(c)))
        for name, embed in (("before", original), ("after", after)):
            clean = embed(setting.canvases)
            row[f"clean_accuracy_{name}"] = round(1 - protocol.clean_error(split, labels, clean, "1nn", seed), 4)
            for a in attacks.ATTACKS:
                test = protocol.evaluate_embeddings(split, labels, clean, dict(zip(protected_idx.tolist(),
                                                                                   embed(cloaks[a].cloaked))), "1nn", seed)
                val = defences.validation_scores(setting, public, clean, embed(held_out[a]), seed=seed)
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


def trained_on(public, pub: dict, labels, refit: bool, users: float, seed: int):
    """The public photos and cloaks a candidate trains on: ``public`` as chosen; with ``refit``,
    every public user (the held-out ones too); with ``users`` < 1, that share of the training
    users (seeded), the held-out users unchanged: how protection on them grows with people."""
    if refit:
        return public.refit(), pub
    if users >= 1:
        return public, pub
    ids = public.train_identities
    ids = np.sort(np.random.default_rng([seed, 4245]).choice(ids, max(1, round(users * len(ids))), replace=False))
    keep, n = np.isin(labels[public.train], ids), len(public.train)
    cloaks = {a: dataclasses.replace(c, cloaked=np.concatenate([c.cloaked[:n][keep], c.cloaked[n:]])) for a, c in pub.items()}
    return defences.PublicData(public.train[keep], public.validation, ids, public.validation_identities), cloaks


def averaged(embedders, canvases, mirror: bool = False) -> np.ndarray:
    """Unit embeddings averaged over ``embedders`` (models trained with different seeds) and,
    with ``mirror``, over each photo and its mirror image (a cloak is made for the photo as it
    is; a face is nearly symmetric), then normalised."""
    views = [canvases] + ([np.ascontiguousarray(np.asarray(canvases)[:, :, ::-1])] if mirror else [])
    e = sum(embed(v) for embed in embedders for v in views)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


# a variant's keys: measure()'s keyword and the value's type (bool: a flag without a value)
VARIANT_KEYS = {"epochs": ("epochs", int), "lr": ("lr", float), "lowkey_share": ("lowkey_share", float),
                "lowkey_steps": ("lowkey_steps", int), "mirrored": ("mirrored", bool), "flip": ("flip", bool),
                "tta": ("tta", bool), "ensemble": ("ensemble", int), "refit": ("refit", bool),
                "users": ("users", float), "seed": ("train_seed", int)}


def parse_variant(spec: str) -> dict:
    """``"mirrored,epochs=3"`` -> ``{"mirrored": True, "epochs": 3}``; ``"default"`` -> ``{}``.
    ``mirrored`` adds every pair's mirror image (twice the steps); ``flip`` mirrors each pair at
    random at every step (``defences.train_robust(flip=True)``, the same steps); ``seed=N`` trains
    with seed N (the same pairs and split: one recipe's spread over training draws);
    ``lowkey_steps=N``: the defender's LowKey cloaks of its public photos (training pairs and
    held-out users) run for N steps (the further LowKey pairs keep the profile's); ``tta``: the
    trained model embeds each photo as the mean of its and its mirror image's embeddings;
    ``ensemble=K``: K models trained with seeds seed, seed + 1, ..., their embeddings averaged
    (K times the training); ``refit``: the recipe trained on every public user's pairs, the
    held-out users' too (their figures then say nothing: not a candidate for the rule);
    ``users=F``: trained on that share of the training users alone."""
    kwargs = {}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        if key == "default":
            continue
        if key not in VARIANT_KEYS:
            raise SystemExit(f"unknown key {key!r} in variant {spec!r} ({', '.join(VARIANT_KEYS)})")
        name, kind = VARIANT_KEYS[key]
        kwargs[name] = True if kind is bool else kind(value)
    return kwargs


def select_variant(rows: list[dict], budget_s: float) -> dict:
    """The rule, on held-out public users only: among candidates that train within ``budget_s``,
    ``defences.select`` (lowest mean validation protection, validation clean accuracy within 2
    points of the original model's). The protected users and the people outside the setting
    play no part. Rows trained with another seed (``seed=``) measure a recipe's spread and
    ``refit`` rows trained on the held-out users: neither is a candidate."""
    recipes = [r for r in rows if "seed=" not in r["variant"] and not r.get("refit")] or rows
    affordable = [r for r in recipes if r["train_s"] <= budget_s] or recipes
    scored = [{"row": r, "validation_protection": r["validation_protection_mean_after"],
               "validation_clean_accuracy": r["validation_clean_accuracy_after"]} for r in affordable]
    return defences.select(scored, rows[0]["validation_clean_accuracy_before"])["row"]


def seed_spread(rows: list[dict]) -> list[dict]:
    """One row per recipe trained with several seeds (variants equal but for ``seed=``): each
    figure's mean over the seeds, with its lowest and highest, per attack."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        recipe = ",".join(p for p in r["variant"].split(",") if not p.startswith("seed=")) or "default"
        groups.setdefault(recipe, []).append(r)

    def mean_range(values):
        return f"{sum(values) / len(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    def per_attack(rs, key):
        return " / ".join(mean_range([r["attacks"][a].get(key, float("nan")) for r in rs]) for a in rs[0]["attacks"])
    return [{"recipe": recipe, "training seeds": " ".join(str(r.get("train_seed", "?")) for r in rs),
             "held-out public users": "(trained on them)" if rs[0].get("refit")
             else per_attack(rs, "validation_protection_after"),
             "setting's protected users": per_attack(rs, "protection_after"),
             "people outside the setting": per_attack(rs, "outside_protection_after"),
             "outside: clean accuracy": mean_range([r.get("outside_clean_accuracy_after", float("nan")) for r in rs])}
            for recipe, rs in groups.items() if len(rs) > 1]


def write_section(page: str, data: str, profile: str, rows: list[dict], budget_s: float) -> None:
    """The candidates as a section of the results page: what the rule saw, what it picked, and
    what each candidate gives on the setting's protected users and on people outside it."""
    import datetime
    from explainer import results_page
    names = list(rows[0]["attacks"])

    def rates(r, key):
        return " / ".join(f"{r['attacks'][a].get(key, float('nan')):.2f}" for a in names)
    trained_on_them = "(trained on them)"  # a refit model's held-out figures say nothing
    table = [{"candidate": r["variant"], "train s": r["train_s"],
              "held-out public users: protection (mean)": trained_on_them if r.get("refit") else
              f"{rates(r, 'validation_protection_after')} ({r['validation_protection_mean_after']:.3f})",
              "held-out: clean accuracy": trained_on_them if r.get("refit") else
              f"{r['validation_clean_accuracy_after']:.3f}",
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
        f"Not candidates: `seed=N` rows (the recipe trained with another seed: its spread) and `refit` rows (the "
        f"recipe trained again with the held-out users' pairs too, as notebook 02 deploys it: the held-out users "
        f"cannot judge it). `users=F`: trained on that share of the training users (how protection on the held-out "
        f"users changes with the number of people trained on). `lowkey_steps=N`: the defender's LowKey cloaks of its "
        f"public photos, held-out users' included, run for N steps. "
        f"The original model's protection: {rates(rows[0], 'protection_before')} on the setting's protected users, "
        f"{rates(rows[0], 'outside_protection_before')} on the people outside it, with clean accuracy "
        f"{rows[0].get('outside_clean_accuracy_before', float('nan')):.3f}.\n\n"
        ) + results_page.markdown_table(table)
    spread = seed_spread(rows)
    if spread:
        text += ("\nThe same recipe trained with other seeds (the same pairs, split and users; another draw of "
                 "batches): each figure's mean over the seeds, lowest-highest in brackets.\n\n"
                 + results_page.markdown_table(spread))
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
                             f"(keys: {', '.join(VARIANT_KEYS)}; seed: the training seed); the rule of select_variant picks one")
    parser.add_argument("--held-out-lowkey-steps", type=int, default=None,
                        help="score every candidate on held-out users' LowKey cloaks of this many steps (default: "
                             "the candidate's own; the users' strength makes the rule compare like with like)")
    parser.add_argument("--budget-s", type=float, default=300.0, help="training seconds a candidate may take")
    parser.add_argument("--markdown", metavar="PAGE", help="with --variants: write them into the results page")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.variants:
        rows = [dict(measure(args.data, args.profile, args.shares[:1], args.seed, sys.stderr.isatty(),
                             held_out_lowkey_steps=args.held_out_lowkey_steps, **kwargs)[0],
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
