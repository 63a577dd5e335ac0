"""The paper's figures: each names its source, quotes it, and claims only what the source reports."""
import json
import re

import pytest

from explainer import paper, results


def _quoted_forms(value) -> list[str]:
    """How a value can be written in a source: 0.97, 97%, 99.8%, 55-77%."""
    if isinstance(value, tuple):
        lo, hi = (round(v * 100) for v in value)
        return [f"{lo}-{hi}%", f"{lo}–{hi}%"]
    pct = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return [f"{value:.2f}", f"{pct}%", f"({pct}%)"]


@pytest.mark.parametrize("figure", paper.FIGURES, ids=lambda f: f.key)
def test_every_figure_names_its_source_and_quotes_its_value(figure):
    assert figure.source in paper.SOURCES
    assert figure.where and figure.quote and figure.claim
    if isinstance(figure.value, str):
        assert " ".join(figure.value.split()[:3]) in figure.quote
    else:
        assert any(form in figure.quote for form in _quoted_forms(figure.value)), (figure.value, figure.quote)


@pytest.mark.parametrize("figure", paper.FIGURES, ids=lambda f: f.key)
def test_no_figure_is_attributed_to_a_setting_its_source_does_not_give(figure):
    source = paper.SOURCES[figure.source]
    assert figure.attack in source["attacks"], figure.attack
    assert figure.model in source["models"], figure.model
    assert figure.classifier in source["classifiers"], figure.classifier
    # A named attack must be the one the quote speaks of (FaceCure's README names "Fawkes" for
    # its Fawkes v1.0 cloaks and "LowKey"/"Lowkey" for LowKey's).
    if figure.attack == "lowkey":
        assert re.search(r"lowkey", figure.quote, re.IGNORECASE)
    if figure.attack.startswith("fawkes"):
        assert "Fawkes" in figure.quote


def test_the_code_readme_gives_no_fawkes_v03_figure():
    # FaceCure evaluates Fawkes v1.0 cloaks (on Fawkes v0.3's extractor) and LowKey's: a figure
    # credited to Fawkes v0.3's cloaks from it would be misattributed.
    assert not [f for f in paper.FIGURES if f.source == "facecure" and f.attack == "fawkes-v0.3"]
    assert paper.markers("poisoning") == {"fawkes-v1.0": 0.97, "lowkey": 0.94}


def test_every_experiment_has_figures_as_json_with_value_and_source():
    for name in ("poisoning", "adaptive", "detection", "time-travel", "hybrid"):
        entries = paper.entries(name)
        assert entries
        for e in entries:
            assert "value" in e and e["source"] in paper.SOURCES and e["source_url"].startswith("https://")
        json.dumps(entries)
    with pytest.raises(ValueError):
        paper.figures("no-such-experiment")


def test_keys_are_unique_and_every_comparison_points_at_a_figure():
    keys = [f.key for f in paper.FIGURES]
    assert len(keys) == len(set(keys))
    assert set(results.THIS_RUN) <= set(keys)
    assert {k for k in results.PAPER_MOVES.values()} <= set(keys)
