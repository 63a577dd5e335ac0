"""Benchmark the cloaking attacks on real faces: speed, overhead over the bare models, budgets kept.

    python bench/attacks.py --data ../shared/data/lfw-deepfunneled-20 --json

Per attack and mode: ``s_per_image_step`` (wall time of one optimisation step / batch size),
``overhead_ratio`` (median attack step / median bare forward+backward of the same extractor
calls at the same batch), and ``dssim_mean``, ``dssim_max``, ``linf_max`` of the saved 8-bit
cloaks. The bare passes are timed between the attack's steps (about eight per run), so both
medians see the same load on a machine whose speed drifts by a fifth from minute to minute.
Nothing is cached: every figure is measured in this run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from explainer import attacks, models, protocol, tensors
from explainer.cache import Cache

DEFAULT_RUNS = ["fawkes-v0.3:min", "fawkes-v0.3:low", "fawkes-v0.3:mid", "fawkes-v1.0:low", "fawkes-v1.0:mid",
                "fawkes-v1.0:high", "lowkey:paper"]


def run(attack: str, mode: str, canvases: np.ndarray, labels: np.ndarray, pool, seed: int) -> dict:
    names = attacks.DEFAULT_MODELS[attack]
    extractors = [models.load_model(n, "cpu") for n in names]
    x = tensors.to_tensor(canvases)
    spec = attacks.get(attack)
    n_steps = spec.steps(mode)
    bare_every = max(1, n_steps // 8)
    steps, bare_s = [], []

    def hook(step):
        nonlocal last
        steps.append(time.perf_counter() - last)
        if step % bare_every == 0:
            bare_s.append(attacks.bare_step_seconds(extractors, x, attack, repeats=1))
        last = time.perf_counter()  # the bare pass is not part of the next step

    prepared = spec.prepare(canvases, names, labels, pool, seed, Cache())
    last = time.perf_counter()
    out, _, _ = spec.run_batch(x, extractors, mode, seed, None, hook, n_steps, prepared, 0)
    step_s = float(np.median(steps[1:]))  # the first step includes warm-up
    bare = float(np.median(bare_s))
    cloaked = tensors.to_uint8(out)
    d, linf, shift = attacks.measure(x, cloaked, names)
    return {"attack": attack, "mode": mode, "models": list(names), "images": len(x), "steps": len(steps),
            "s_per_image_step": round(step_s / len(x), 4), "overhead_ratio": round(step_s / bare, 3),
            "bare_fwd_bwd_s_per_image": round(bare / len(x), 4),
            "dssim_mean": round(float(d.mean()), 5), "dssim_max": round(float(d.max()), 5),
            "linf_max": round(float(linf.max()), 5), "linf_max_255": int(round(float(linf.max()) * 255)),
            "shift_mean": {k: round(float(v.mean()), 4) for k, v in shift.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="orl")
    parser.add_argument("--images", type=int, default=8, help="photos attacked as one batch")
    parser.add_argument("--runs", nargs="*", default=DEFAULT_RUNS, help="attack:mode pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    setting = protocol.load_setting(args.data, "full", seed=args.seed, progress=False)
    rng = np.random.default_rng(args.seed)
    users = rng.choice(np.unique(setting.labels), size=2, replace=False)
    idx = np.concatenate([np.flatnonzero(setting.labels == u)[: args.images // 2] for u in users])
    pool_idx = np.flatnonzero(~np.isin(setting.labels, users))
    pool = (setting.canvases[pool_idx], setting.labels[pool_idx])
    results = []
    for item in args.runs:
        attack, mode = item.split(":")
        results.append(run(attack, mode, setting.canvases[idx], setting.labels[idx], pool, args.seed))
        if not args.json:
            r = results[-1]
            print(f"{attack:12s} {mode:6s} {r['s_per_image_step']:.3f} s/img-step  overhead {r['overhead_ratio']:.2f}  "
                  f"dssim {r['dssim_mean']:.4f}/{r['dssim_max']:.4f}  linf {r['linf_max_255']}/255", flush=True)
    if args.json:
        print(json.dumps({"data": str(args.data), "threads": torch.get_num_threads(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
