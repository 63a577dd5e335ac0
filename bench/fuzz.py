"""Fuzz the photo loader and ``explainer cloak``'s reading path, and count the outcomes.

    python bench/fuzz.py --examples 10000 --json

Hypothesis draws would-be photo files (random bytes; truncated and bit-flipped JPEG, PNG, WebP
and GIF files of a face; headers claiming huge or zero sizes; P, LA, I;16, CMYK and 1-bit
images: ``tests/fuzz_inputs.py``). Each must end as a face, "no face" or the loader's own
one-line ``PhotoError``. Any other exception is a failure: counted, with its first example,
and the exit code is 1. ``peak_rss_mb`` bounds the memory any example took. ``--no-faces``
stops after loading (MTCNN is most of the time).
"""
from __future__ import annotations

import argparse
import collections
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fuzz_inputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-faces", action="store_true", help="stop after loading: no face detection")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from hypothesis import HealthCheck, given, seed, settings

    from tests.fuzz_inputs import outcome, photo_files

    counts: collections.Counter = collections.Counter()
    failures: dict[str, str] = {}
    start = time.perf_counter()

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(photo_files())
    def run(raw):
        try:
            counts[outcome(raw, find_face=not args.no_faces)] += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported, the fuzzing goes on
            key = f"FAILURE {type(exc).__name__}"
            counts[key] += 1
            failures.setdefault(key, f"{exc!s:.200} (input of {len(raw)} bytes, starts {raw[:16]!r})")

    run()
    report = {"examples": sum(counts.values()), "outcomes": dict(counts.most_common()), "failures": failures,
              "seconds": round(time.perf_counter() - start, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, n in report["outcomes"].items():
            print(f"{n:6d}  {name}")
        print(f"{report['examples']} examples in {report['seconds']} s, peak RSS {report['peak_rss_mb']} MB")
        for key, example in failures.items():
            print(f"{key}: {example}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
