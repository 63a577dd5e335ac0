"""Time the whole notebook sequence cold (empty cache) and warm (cached), with peak memory.

    python bench/notebooks.py --profile classroom --json

"Cold" runs every notebook with a fresh, empty ``EXPLAINER_CACHE``: the teacher's
preparation. "Warm" runs them again on the cache the cold run filled: what runs in class.
Peak RSS is the largest resident memory of this process plus its children (the notebook
kernels), sampled every 0.2 s. ``--floor`` adds the arithmetic floor of the cold run's
cloaking: bare forward+backward seconds per image-step x steps x photos, for every cloak the
profile computes (``experiments.cloak_workload``), as ``floor_s``, and ``cold_over_floor``.
Prints ``{"cold_s", "warm_s", "peak_rss_gb", "notebooks": {name: {"cold_s", "warm_s"}}, ...}``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


class PeakRss:
    """Sample the resident memory of this process and all its descendants in a thread."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self.peak_since, self._stop = interval, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me] + me.children(recursive=True):
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self.peak_since = max(self.peak_since, total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_sequence(profile: str, data: str, out: Path, only, rss: "PeakRss") -> tuple[dict[str, float], dict[str, float]]:
    """Run the notebooks one by one; (seconds, peak RSS in GB) per notebook."""
    from explainer.notebooks import notebook_paths, run_notebooks
    peaks = {}

    def done(name: str, seconds: float) -> None:
        peaks[name] = round(rss.peak_since / 2**30, 2)
        rss.peak_since = 0

    rss.peak_since = 0
    # One call, as `explainer run` does: each notebook's kernel starts while the one before runs.
    with contextlib.redirect_stdout(sys.stderr):  # run_notebooks' progress lines: stdout is for --json
        seconds = run_notebooks(profile, data, out, [p.stem for p in notebook_paths(only)], progress=False,
                                on_done=done)
    return seconds, peaks


def floor_seconds(profile: str, data: str, seed: int = 0, batch: int = 8) -> dict:
    """Bare forward+backward time x steps x photos of every cloak the profile computes, at the
    attacks' batch size and precision."""
    import torch

    from explainer import attacks, experiments, models, protocol, tensors
    workload = experiments.cloak_workload(data, profile, seed)
    setting = protocol.load_setting(data, profile, seed, progress=False)
    x = tensors.to_tensor(setting.canvases[:batch])
    per_image_step = {}
    precision = attacks.attack_precision("cpu")
    for a in attacks.ATTACKS:
        extractors = [attacks.attack_extractor(models.load_model(n, "cpu"), precision) for n in attacks.DEFAULT_MODELS[a]]
        per_image_step[a] = attacks.bare_step_seconds(extractors, x, a) / len(x)
    rows = [{**r, "floor_s": round(r["photos"] * r["steps"] * per_image_step[r["attack"]], 1)} for r in workload]
    return {"threads": torch.get_num_threads(), "precision": precision, "batch": batch, "bare_s_per_image_step": {k: round(v, 4) for k, v in per_image_step.items()},
            "cloaks": rows, "floor_s": round(sum(r["floor_s"] for r in rows), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="classroom", choices=["ci", "classroom", "full"])
    parser.add_argument("--data", default="orl")
    parser.add_argument("--only", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--cache", default=None, help="cache folder for the cold run (must be empty or absent; "
                        "default: a fresh temporary folder, removed afterwards unless --keep-cache)")
    parser.add_argument("--keep-cache", action="store_true")
    parser.add_argument("--out", default=None, help="keep the executed notebooks and HTML here (cold/, warm/)")
    parser.add_argument("--no-warm", action="store_true", help="only the cold run")
    parser.add_argument("--warm-only", action="store_true", help="only a warm run, on the filled cache --cache")
    parser.add_argument("--floor", action="store_true", help="also measure the cloaking floor (about a minute)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", metavar="PAGE", help="write the figures into the results page as its "
                        "'preparation' section for this data set and profile")
    parser.add_argument("--from-json", metavar="REPORT", help="run nothing: write --markdown from a report "
                        "this script printed with --json")
    args = parser.parse_args(argv)
    if args.from_json:
        if not args.markdown:
            parser.error("--from-json needs --markdown")
        write_page(args.markdown, json.loads(Path(args.from_json).read_text()))
        return 0

    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="explainer-bench-cache-"))
    if args.warm_only and not (args.cache and cache.is_dir() and any(cache.iterdir())):
        parser.error("--warm-only needs --cache pointing at a cache that a cold run filled")
    if not args.warm_only and cache.exists() and any(cache.iterdir()):
        parser.error(f"{cache} is not empty: a cold run needs an empty cache")
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["EXPLAINER_CACHE"] = str(cache)  # the kernels inherit it
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="explainer-bench-out-"))
    report: dict = {"profile": args.profile, "data": args.data, "cpus": os.cpu_count(), "cache": str(cache)}
    try:
        with PeakRss() as rss:
            cold, warm, cold_rss, warm_rss = {}, {}, {}, {}
            if not args.warm_only:
                start = time.perf_counter()
                cold, cold_rss = run_sequence(args.profile, args.data, out / "cold", args.only, rss)
                report["cold_s"] = round(time.perf_counter() - start, 1)
            if not args.no_warm:
                start = time.perf_counter()
                warm, warm_rss = run_sequence(args.profile, args.data, out / "warm", args.only, rss)
                report["warm_s"] = round(time.perf_counter() - start, 1)
        report["peak_rss_gb"] = round(rss.peak / 2**30, 2)
        report["notebooks"] = {name: {**({"cold_s": round(cold[name], 1), "cold_peak_rss_gb": cold_rss[name]}
                                         if name in cold else {}),
                                      **({"warm_s": round(warm[name], 1), "warm_peak_rss_gb": warm_rss[name]}
                                         if name in warm else {})}
                               for name in {**cold, **warm}}
        report["cache_gb"] = round(sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**30, 2)
        if args.floor:
            report["floor"] = floor_seconds(args.profile, args.data)
            report["floor_s"] = report["floor"]["floor_s"]
            if "cold_s" in report:
                report["cold_over_floor"] = round(report["cold_s"] / report["floor_s"], 2)
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
        if not args.keep_cache and not args.cache:
            shutil.rmtree(cache, ignore_errors=True)
    from explainer import results_page
    report["measured"], report["machine"] = datetime.date.today().isoformat(), results_page.machine()
    if args.markdown:
        write_page(args.markdown, report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        nan = float("nan")
        for name, t in report["notebooks"].items():
            print(f"{name:24s} cold {t.get('cold_s', nan):7.1f} s   warm {t.get('warm_s', nan):6.1f} s")
        print(f"{'all':24s} cold {report.get('cold_s', nan):7.1f} s   warm {report.get('warm_s', nan):6.1f} s   "
              f"peak RSS {report['peak_rss_gb']:.2f} GB")
    return 0


def write_page(page: str, report: dict) -> None:
    """This report as the results page's preparation section of its data set and profile."""
    from explainer import results_page
    title = "preparation: " + results_page.section_title(report["data"], report["profile"])
    meta = {"measured": report.get("measured", "?"), "machine": report.get("machine", "?"),
            "by": f"bench/notebooks.py --profile {report['profile']} --data {report['data']}"
                  + (" --floor" if "floor_s" in report else "")}
    results_page.update_page(page, title, results_page.preparation_section(title, report, meta))
    print(f"wrote {title} into {page}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
