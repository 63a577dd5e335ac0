"""How long a new process waits for its first UMAP map (each notebook's kernel is one).

    python bench/maps.py --json

Each measurement runs in a fresh Python process: a map of 100 unit embeddings fitted and 60
points placed on it, the notebooks' call (``explainer.maps.fit_umap``). ``installed``: umap as
installed, whose numba functions compile in every process; ``cached``: with
``explainer.maps.umap_with_cached_numba``, numba's on-disk cache, run twice (the first run may
still compile and store; ``make`` does that once at install). Nothing is asserted: this prints seconds.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import time, numpy as np
import explainer.maps as maps
if {installed}:
    maps.umap_with_cached_numba = lambda: __import__("umap")  # numba as umap ships it: no cache
x = np.random.default_rng(0).normal(size=(100, 128)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
start = time.perf_counter()
maps.umap_with_cached_numba()
imported = time.perf_counter()
maps.fit_umap(x, seed=0).transform(x[:60])
print(imported - start, time.perf_counter() - imported)
"""


def first_map_seconds(installed: bool) -> dict:
    """Seconds to import umap, then to fit the first map and place points on it, in a new process."""
    out = subprocess.run([sys.executable, "-c", CHILD.format(installed=installed)], check=True, capture_output=True, text=True)
    imported, mapped = map(float, out.stdout.strip().splitlines()[-1].split())
    return {"import_s": round(imported, 2), "map_s": round(mapped, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = {"installed": first_map_seconds(True), "cached_first": first_map_seconds(False),
              "cached_again": first_map_seconds(False)}
    print(json.dumps(report, indent=2) if args.json else
          "\n".join(f"{k:15s} import {v['import_s']:.2f} s  map {v['map_s']:.2f} s" for k, v in report.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
