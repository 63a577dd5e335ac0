"""The paper's experiments as functions that the notebooks and ``explainer experiment`` share,
one module per section of the paper: ``poisoning``, ``adaptive``, ``detection``,
``time_travel``, ``hybrid``, and ``your_photo`` for notebook 06. ``common`` holds what they
all start from.

Each experiment takes a ``Scenario`` (the data, the profile, the seed, the cache, progress bars;
built once, e.g. ``Scenario("orl", "ci")``), computes what it needs through the cache
(cloaks, embeddings, trained models) and returns a run object whose ``to_json()`` is what
``explainer experiment NAME --json`` prints: ``{"results": [...], "settings": {...}, "paper": [...]}``,
where ``paper`` lists the figures the paper's authors reported for the same experiment, each with
its value and source (``explainer.paper``). Each run also records its report
(``explainer.results.record``), which notebook 07 reads back.
"""
from __future__ import annotations

from .adaptive import (AdaptiveRun, adaptive_epochs, adaptive_generalisation, adaptive_umap, cloak_shift,
                       outside_scores, run_adaptive, same_person_distance)
from .common import (VIEWER_EXTRA_MODES, Scenario, adaptive_model, cloak_workload, cloaked_setting, defender_data,
                     evaluation_models, protected_cloaks)
from .detection import DetectionRun, run_detection
from .hybrid import HybridRun, pooled, run_hybrid
from .poisoning import PoisoningRun, iterate_frames, run_poisoning, viewer_results
from .time_travel import TimeTravelRun, run_time_travel, switch_pairs, switching_rows
from .your_photo import YourPhotoRun, run_your_photo, your_canvases

EXPERIMENTS = {"poisoning": run_poisoning, "adaptive": run_adaptive, "detection": run_detection,
               "time-travel": run_time_travel, "hybrid": run_hybrid}

__all__ = ["EXPERIMENTS", "VIEWER_EXTRA_MODES", "AdaptiveRun", "Scenario", "DetectionRun", "HybridRun", "PoisoningRun",
           "TimeTravelRun", "YourPhotoRun", "adaptive_epochs", "adaptive_generalisation", "adaptive_model", "adaptive_umap",
           "cloak_shift", "cloak_workload", "cloaked_setting", "defender_data", "evaluation_models", "iterate_frames",
           "outside_scores", "pooled", "protected_cloaks", "run_adaptive", "run_detection", "run_hybrid", "run_poisoning",
           "run_time_travel", "run_your_photo", "same_person_distance", "switch_pairs", "switching_rows",
           "viewer_results", "your_canvases"]
