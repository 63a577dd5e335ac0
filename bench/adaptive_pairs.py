"""The adaptive defence against the defender's number of clean/cloaked pairs.

    python bench/adaptive_pairs.py --data ../shared/data/lfw-deepfunneled-20 --shares 0.4 --json
    python bench/adaptive_pairs.py --data ../shared/data/lfw-deepfunneled-20 --shares 0.4 0.6 \
        --lowkey-share 0 --epochs 10 --lr 2.5e-4 --json   # the earlier recipe

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
            mirrored: bool = False) -> list[dict]:
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
                                            lowkey_share=lowkey_share, epochs=epochs, lr=lr, mirrored=mirrored)
        row = {"share": share, "pairs_per_attack": n, "extra_lowkey_pairs": n_extra, "epochs": epochs, "lr": lr,
               "mirrored": mirrored,
               "per_identity": round(n / len(public.train_identities), 2),
               "train_s": round(robust.train_s, 1), "wall_s": round(time.perf_counter() - t, 1), "attacks": {}}
        for name, embed in (("before", original), ("after", lambda c: robust.embeddings(c))):
            clean = embed(setting.canvases)
            row[f"clean_accuracy_{name}"] = round(1 - protocol.clean_error(split, labels, clean, "1nn", seed), 4)
            for a in attacks.ATTACKS:
                test = protocol.evaluate_embeddings(split, labels, clean, dict(zip(protected_idx.tolist(),
                                                                                   embed(cloaks[a].cloaked))), "1nn", seed)
                val = defences.validation_scores(setting, public, clean, embed(pub[a].cloaked[n:]), seed=seed)
                row["attacks"].setdefault(a, {}).update({f"validation_protection_{name}": round(val["protection_rate"], 4),
                                                         f"protection_{name}": round(test.protection_rate, 4)})
            if scenario.outside is not None:  # people nothing was chosen on: reported, never chosen by
                for (a, _), v in experiments.outside_scores(scenario, embed).items():
                    row["attacks"][a][f"outside_protection_{name}"] = round(v["protection_rate"], 4)
                    row[f"outside_clean_accuracy_{name}"] = round(v["clean_accuracy"], 4)
        rows.append(row)
    return rows


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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
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
