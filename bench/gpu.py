"""Check the zoo and the attacks on a CUDA device: same embeddings as on the CPU, and their speed.

    python bench/gpu.py --models dlib-resnet sface --json

(Named gpu.py, not cuda.py: a script folder on sys.path with a cuda.py shadows the
``cuda`` package that torch imports, and every script in bench/ then fails to import torch.)

For each model: the lowest cosine between CPU and CUDA embeddings of real faces (ORL), and
images/s on each device. For Fawkes v1.0 (low) and LowKey against ``--attack-models``: seconds
per image-step on CUDA, DSSIM and L-inf of the 8-bit cloaks. Exits 2 when CUDA is absent.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from explainer import attacks, data, faces, models
from explainer.cache import Cache


def timed_embed(model, canvases, repeats=2):
    model.embed(canvases[:8])
    start = time.perf_counter()
    for _ in range(repeats):
        e = model.embed(canvases, batch_size=64)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return e.numpy(), repeats * len(canvases) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=models.model_names(offline=True))
    parser.add_argument("--attack-models", nargs="*", default=list(attacks.DEFAULT_MODELS["fawkes-v1.0"]))
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(json.dumps({"cuda": False}))
        return 2
    faceset = data.load_faces("orl", max_images=2)
    canvases = faces.align_images(faceset.images, "orl", progress=False)[0][: args.images]
    report = {"cuda": True, "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "models": {},
              "attacks": []}
    for name in args.models:
        cpu, cpu_rate = timed_embed(models.load_model(name, "cpu"), canvases)
        gpu, gpu_rate = timed_embed(models.load_model(name, "cuda"), canvases)
        cos = (cpu * gpu).sum(1) / np.linalg.norm(cpu, axis=1) / np.linalg.norm(gpu, axis=1)
        report["models"][name] = {"min_cosine_cpu_vs_cuda": round(float(cos.min()), 7),
                                  "cpu_images_per_s": round(cpu_rate, 1), "cuda_images_per_s": round(gpu_rate, 1)}
    for attack, mode in (("fawkes-v1.0", "low"), ("lowkey", None)):
        start = time.perf_counter()
        result = attacks.cloak(canvases, attack, mode, models=tuple(args.attack_models), cache=Cache("/tmp/cuda-cache"),
                               progress=False, device="cuda", batch_size=len(canvases))
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        steps = attacks.steps_of(attack, result.mode)
        report["attacks"].append({"attack": attack, "mode": result.mode, "models": list(result.models),
                                  "images": len(canvases), "s_per_image_step": round(seconds / steps / len(canvases), 5),
                                  "dssim_max": round(float(result.dssim.max()), 5),
                                  "linf_max_255": int(round(float(result.linf.max()) * 255)),
                                  "shift_mean": {k: round(float(v.mean()), 4) for k, v in result.shift.items()}})
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
