"""What the paper's authors reported, with where each figure comes from.

Every figure a notebook shows as "the paper's" is an entry here, never a number typed into a
notebook. Two sources are used, because a student can open both:

* ``post``: the ICLR 2023 blog post *Data Poisoning is Hitting a Wall* (Rajat Sahay), which
  retells the paper for readers; its figures cover all users of FaceScrub.
* ``facecure``: the README of the authors' code, FaceCure, whose figures are for **one**
  FaceScrub user (Adam Sandler) and the tools' strongest settings.

Each entry names the setting its source gives (attack, extractor, classifier) and quotes the
source's own words, so a test can check that the value is in the quote and that the setting
is one the source reports. Where the source's model differs from ours (WebFace, MagFace,
CLIP), the entry says so: those are the paper's models, not the zoo's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

SOURCES = {
    "post": {
        "title": "Data Poisoning is Hitting a Wall (ICLR 2023 blog post, R. Sahay)",
        "url": "https://iclr-blogposts.github.io/2023/blog/2023/facial-poisoning/",
        "scope": "all users of FaceScrub, as the post summarises the paper",
        # What the post gives figures for.
        "attacks": {"fawkes-v0.3", "fawkes-v1.0", "lowkey", "all three"},
        "models": {"WebFace", "adaptive (robust)", "ImageNet CNN detector", "Celeb1M", "MagFace",
                   "MagFace + robust model"},
        "classifiers": {"not stated", "1-NN", "detector"},
    },
    "facecure": {
        "title": "FaceCure README (the authors' code, github.com/ftramer/FaceCure)",
        "url": "https://github.com/ftramer/FaceCure",
        "scope": "one FaceScrub user (Adam_Sandler), Fawkes v1.0 'high' and LowKey cloaks",
        # The README evaluates Fawkes v1.0 cloaks and LowKey cloaks only; none made by Fawkes v0.3.
        "attacks": {"fawkes-v1.0", "lowkey", "both"},
        "models": {"Fawkes v0.3's extractor", "Fawkes v1.0's extractor", "MagFace", "CLIP",
                   "adaptive (robust)"},
        "classifiers": {"1-NN", "end-to-end", "not stated"},
    },
}


@dataclass(frozen=True)
class Figure:
    """One figure the paper's authors reported, and where it comes from."""

    key: str  # stable id, used by explainer.results to find this run's counterpart
    experiment: str  # poisoning, adaptive, detection, time-travel, hybrid
    claim: str
    value: float | tuple[float, float] | str  # a rate, a (low, high) range, or words when no number is given
    attack: str
    model: str
    classifier: str
    source: str  # a key of SOURCES
    where: str  # the section of the source
    quote: str  # the source's own words, holding the value

    def as_dict(self) -> dict:
        d = asdict(self)
        d["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        d["source_title"] = SOURCES[self.source]["title"]
        d["source_url"] = SOURCES[self.source]["url"]
        d["scope"] = SOURCES[self.source]["scope"]
        return d

    def value_text(self) -> str:
        if isinstance(self.value, tuple):
            return f"{self.value[0]:.2f}-{self.value[1]:.2f}"
        if isinstance(self.value, float):
            return f"{self.value:.2f}" if round(self.value, 2) == self.value else f"{self.value:.3f}"
        return self.value


FIGURES: tuple[Figure, ...] = (
    # Experiment 1: the baseline, cloaks against the model they target.
    Figure("post-baseline-protected", "poisoning", "protected users misidentified by a non-robust model",
           (0.55, 0.77), "all three", "WebFace", "not stated", "post",
           "Experiments / Adaptive defenses break facial poisoning attacks, 'Results'",
           "They were found to have a misclassification rate of 55-77% for users who poisoned their pictures online."),
    Figure("post-baseline-unprotected", "poisoning", "unprotected users misidentified by the same model",
           0.08, "all three", "WebFace", "not stated", "post",
           "Experiments / Adaptive defenses break facial poisoning attacks, 'Results'",
           "This compares starkly to a rate of 8% for unprotected users."),
    Figure("facecure-baseline-nn-fawkes", "poisoning", "protection rate, baseline 1-NN",
           0.97, "fawkes-v1.0", "Fawkes v0.3's extractor", "1-NN", "facecure",
           "Baseline evaluation with NN and linear classifiers / NN classifier",
           "Fawkes (baseline NN) | Lowkey (baseline NN): Protection rate: 0.97 | Protection rate: 0.94"),
    Figure("facecure-baseline-nn-lowkey", "poisoning", "protection rate, baseline 1-NN",
           0.94, "lowkey", "Fawkes v0.3's extractor", "1-NN", "facecure",
           "Baseline evaluation with NN and linear classifiers / NN classifier",
           "Fawkes (baseline NN) | Lowkey (baseline NN): Protection rate: 0.97 | Protection rate: 0.94"),
    Figure("facecure-baseline-e2e-fawkes", "poisoning", "protection rate, baseline end-to-end",
           0.88, "fawkes-v1.0", "Fawkes v0.3's extractor", "end-to-end", "facecure",
           "Baseline evaluation with end-to-end training",
           "Fawkes (baseline E2E) | Lowkey (baseline E2E): Protection rate: 0.88 | Protection rate: 0.97"),
    Figure("facecure-baseline-e2e-lowkey", "poisoning", "protection rate, baseline end-to-end",
           0.97, "lowkey", "Fawkes v0.3's extractor", "end-to-end", "facecure",
           "Baseline evaluation with end-to-end training",
           "Fawkes (baseline E2E) | Lowkey (baseline E2E): Protection rate: 0.88 | Protection rate: 0.97"),
    # Experiment 2: the adaptive defence.
    Figure("post-adaptive", "adaptive", "all users misidentified once the model is trained adaptively",
           (0.05, 0.08), "all three", "adaptive (robust)", "not stated", "post",
           "Experiments / Adaptive defenses break facial poisoning attacks, 'Results'",
           "However, when trained adaptively, the misclassification rate for all users - protected or "
           "unprotected - dropped to 5-8%, and all poisoning attacks were rendered ineffective."),
    Figure("facecure-adaptive-nn-fawkes", "adaptive", "protection rate, adaptive 1-NN (robust extractor)",
           0.03, "fawkes-v1.0", "adaptive (robust)", "1-NN", "facecure",
           "Defense evaluation / Adaptive NN classifier",
           "Fawkes (adaptive NN) | Lowkey (adaptive NN): Protection rate: 0.03 | Protection rate: 0.03"),
    Figure("facecure-adaptive-nn-lowkey", "adaptive", "protection rate, adaptive 1-NN (robust extractor)",
           0.03, "lowkey", "adaptive (robust)", "1-NN", "facecure",
           "Defense evaluation / Adaptive NN classifier",
           "Fawkes (adaptive NN) | Lowkey (adaptive NN): Protection rate: 0.03 | Protection rate: 0.03"),
    Figure("facecure-adaptive-clean-error", "adaptive", "error on unperturbed pictures of the robust model",
           0.03, "both", "adaptive (robust)", "not stated", "facecure",
           "Defense evaluation / Adaptive NN classifier",
           "The model achieves an error rate on unperturbed pictures of just 3%."),
    # Experiment 3: detection.
    Figure("post-detection-precision", "detection", "detector precision (cloaked = positive)",
           0.998, "all three", "ImageNet CNN detector", "detector", "post",
           "Experiments / Attack Detection",
           "The model detected the poisoned images with near-perfect precision (99.8%) and recall (99.8%)."),
    Figure("post-detection-recall", "detection", "detector recall (cloaks caught)",
           0.998, "all three", "ImageNet CNN detector", "detector", "post",
           "Experiments / Attack Detection",
           "The model detected the poisoned images with near-perfect precision (99.8%) and recall (99.8%)."),
    # Experiment 4: time travel.
    Figure("post-time-travel-celeb1m", "time-travel", "Fawkes v1.0's error rate on the model it targets",
           1.0, "fawkes-v1.0", "Celeb1M", "not stated", "post",
           "Experiments / Time is all you need",
           "Fawkes v1.0 provided a perfect (100%) error rate on the Celeb1M model (the one it was trained to target)"),
    Figure("facecure-oblivious-fawkes-own", "time-travel", "protection rate on the attacked era's extractor",
           1.0, "fawkes-v1.0", "Fawkes v1.0's extractor", "1-NN", "facecure",
           "Defense evaluation / Oblivious NN classifier",
           "Fawkes attack & Fawkes extractor: Protection rate: 1.00"),
    Figure("facecure-oblivious-fawkes-magface", "time-travel", "protection rate on a newer extractor (MagFace, 2021)",
           0.0, "fawkes-v1.0", "MagFace", "1-NN", "facecure",
           "Defense evaluation / Oblivious NN classifier",
           "Fawkes attack & MagFace extractor: Protection rate: 0.00"),
    Figure("facecure-oblivious-lowkey-magface", "time-travel", "protection rate on a newer extractor (MagFace, 2021)",
           1.0, "lowkey", "MagFace", "1-NN", "facecure",
           "Defense evaluation / Oblivious NN classifier",
           "LowKey attack & MagFace extractor: Protection rate: 1.00"),
    Figure("facecure-oblivious-lowkey-clip", "time-travel",
           "protection rate on CLIP, a general-purpose model trained on far more data",
           0.24, "lowkey", "CLIP", "1-NN", "facecure",
           "Defense evaluation / Oblivious NN classifier",
           "LowKey attack & CLIP extractor: Protection rate: 0.24"),
    # Experiment 5: hybrids.
    Figure("post-hybrid", "hybrid", "clean accuracy of the hybrid (MagFace + a robust model)",
           "matches or exceeds MagFace's, with high robustness", "all three", "MagFace + robust model",
           "1-NN", "post", "Experiments / Robustness shouldn't come at the cost of accuracy",
           "In both cases, the clean accuracy of the system matches or exceeds that of MagFace, while "
           "retaining high robustness to attacks."),
)


def figures(experiment: str | None = None) -> list[Figure]:
    """The paper's figures, all or those of one experiment."""
    found = [f for f in FIGURES if experiment is None or f.experiment == experiment]
    if experiment is not None and not found:
        known = sorted({f.experiment for f in FIGURES})
        raise ValueError(f"No paper figures for {experiment!r}; experiments: {', '.join(known)}")
    return found


def entries(experiment: str) -> list[dict]:
    """The ``paper`` list of an experiment's JSON report: each entry with its value and source."""
    return [f.as_dict() for f in figures(experiment)]


def markers(experiment: str, classifier: str = "1-NN", source: str = "facecure") -> dict[str, float]:
    """{attack: value} of one source's numeric figures for an experiment and classifier: the
    paper's markers beside a figure of this run's rates (attacks the source has no figure for
    are absent, never filled in)."""
    return {f.attack: f.value for f in figures(experiment)
            if f.source == source and f.classifier == classifier and isinstance(f.value, float)}


def figure(key: str) -> Figure:
    for f in FIGURES:
        if f.key == key:
            return f
    raise KeyError(key)


# The post's closing argument, in our words: notebook 07 and the README read it from here.
CONCLUSIONS = (
    ("The trainer adapts", "With black-box access to the public cloaking tool, a trainer cloaks photos of people "
     "it already has and trains a robust model that recognises everyone again (notebook 02)."),
    ("The trainer detects", "The same access lets it train a detector that spots cloaked photos almost perfectly "
     "(notebook 03), to filter them out or to treat them differently."),
    ("The trainer waits", "Cloaks are made against today's models; newer models that appeared within a year of "
     "the attacks already ignore some of them (notebook 04)."),
    ("Robustness is free", "An accurate model and a robust one together keep the accuracy of the first and the "
     "robustness of the second (notebook 05)."),
)

ARGUMENT = (
    ("No arms race to win", "A cloak is fixed the day the photo is posted and scraped; the trainer moves second, "
     "for as long as the photo stays online. A user would have to fool every future model, the trainer has to "
     "beat one old cloak once."),
    ("A false sense of security", "Someone who would not have posted photos may post cloaked ones, believing "
     "they are safe, and end up less private than before."),
    ("Detection is itself a risk", "A cloaked photo can be spotted, and spotting it singles its owner out as "
     "someone who tried to hide."),
    ("The remedy is law", "The authors, and the post, point to legislation restricting privacy-invasive facial "
     "recognition rather than a technical fix that users must win forever."),
)
