"""Maps of the embedding space: UMAP coordinates of embeddings, cached, for the figures to draw.

Computation only; ``explainer.viz`` draws the maps. Points added later (a cloak's iterates, say)
are placed on a map fitted once with ``transform``, so they move on the same axes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .cache import Cache


# umap's modules whose numba functions are compiled on a map's first fit or transform
UMAP_NUMBA_MODULES = ("umap.umap_", "umap.utils", "umap.layouts", "umap.spectral", "umap.distances", "umap.sparse")


def umap_with_cached_numba():
    """``umap``, with every numba function of its modules cached on disk (numba's own cache,
    beside umap's files). Most of them are compiled without a cache: every new process (each
    notebook's kernel) would spend about 20 s compiling them before its first map."""
    import importlib

    import umap
    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher
    for name in UMAP_NUMBA_MODULES:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, CPUDispatcher) and not isinstance(value._cache, FunctionCache):
                try:
                    value.enable_caching()
                except RuntimeError:  # nowhere to write a cache: compiled in memory, as umap ships it
                    pass
    return umap


def fit_umap(embeddings: np.ndarray, seed: int = 0, n_neighbors: int = 15):
    """A fitted 2-D UMAP of unit embeddings (cosine metric); ``.embedding_`` holds the coordinates.

    Later points (cloak iterates) are placed with ``reducer.transform`` so the map does not jump.
    """
    umap = umap_with_cached_numba()
    n_neighbors = max(2, min(n_neighbors, len(embeddings) - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=0.2, metric="cosine",
                        random_state=seed, n_jobs=1, init="spectral" if len(embeddings) > n_neighbors + 2 else "random")
    reducer.fit(embeddings)
    return reducer


UMAP_VERSION = 1  # part of the cached coordinates' key


def umap_coords(embeddings: np.ndarray, seed: int = 0, place: Sequence[np.ndarray] = (), n_neighbors: int = 15,
                cache=None) -> tuple[np.ndarray, list[np.ndarray]]:
    """2-D UMAP coordinates of ``embeddings`` (fitted on them) and of each array in ``place``
    (placed with ``transform`` on the same map), cached: a fit takes seconds, a class waits for none."""
    cache = cache if cache is not None else Cache()
    place = list(place)

    def compute():
        reducer = fit_umap(embeddings, seed=seed, n_neighbors=n_neighbors)
        return {"base": reducer.embedding_, **{f"place{i}": reducer.transform(p) for i, p in enumerate(place)}}

    out = cache.get_or_compute("umap", [UMAP_VERSION, embeddings, seed, n_neighbors, place], compute)
    return out["base"], [out[f"place{i}"] for i in range(len(place))]
