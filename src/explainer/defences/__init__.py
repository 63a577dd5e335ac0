"""The trainer's side of the arms race, split by what it owns.

The trainer moves second. With black-box access to the cloaking tools it cloaks the scraped
photos of *public* users itself (never a protected user's) and so holds clean/cloaked pairs of
the same photo (``public``). It uses them to train a robust extractor (``robust``, notebook 02)
and a cloak detector (``detector``, notebook 03), both through one training loop
(``training``); it combines models (``hybrid``, notebooks 04-05) and knows what a social
network does to an upload (``uploads``).
"""
from __future__ import annotations

from .detector import (DETECTOR_CROP, DETECTOR_VERSION, Detector, TrainedDetector, choose_threshold,
                       detection_metrics, random_crops, train_detector)
from .hybrid import (HybridCurves, choose_tau, hybrid_curves, nearest, project, threshold_predict, train_probe,
                     union_gallery_evaluation)
from .public import (PublicData, lowkey_extra, lowkey_extra_photos, mirrored_pairs, pair_data, profile_public_data,
                     public_cloaks, public_data, validation_scores, validation_split)
from .robust import (RECIPES, ROBUST_VERSION, STARTS, RobustModel, StagedNet, embed_jointly, joint_embedders, select,
                     train_robust, with_clean_photos)
from .training import load_trained, run_epochs, trained_arrays, warmup_cosine
from .uploads import SOCIAL_NETWORK, downscale, jpeg

__all__ = ["DETECTOR_CROP", "DETECTOR_VERSION", "Detector", "HybridCurves", "PublicData", "RECIPES", "ROBUST_VERSION",
           "RobustModel", "SOCIAL_NETWORK", "STARTS", "StagedNet", "TrainedDetector", "choose_tau", "choose_threshold",
           "detection_metrics", "downscale", "embed_jointly", "hybrid_curves", "joint_embedders", "jpeg", "load_trained",
           "lowkey_extra", "lowkey_extra_photos", "mirrored_pairs", "nearest", "pair_data", "profile_public_data", "project",
           "public_cloaks",
           "public_data", "random_crops", "run_epochs", "select", "threshold_predict", "train_detector", "train_probe",
           "train_robust", "trained_arrays", "union_gallery_evaluation", "validation_scores", "validation_split",
           "warmup_cosine", "with_clean_photos"]
