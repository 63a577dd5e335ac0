# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # 07 · Conclusion: the trainer moves second
#
# Notebooks 01 to 05 each played one move of a game between people who cloak their photos
# (the paper's *attack*) and a company that scrapes and recognises them (the paper's
# *defence*). This notebook puts the moves side by side. It reads the results those notebooks
# recorded and computes nothing: run them first (with the same `profile`, `data` and `seed`).
#
# **Predict first.** The users made their cloaks once, before anything else happened. Of the
# trainer's four moves (adapt, detect, wait, combine), how many does it need to win?

# %% tags=["parameters"] slideshow={"slide_type": "skip"}
profile: str = "classroom"  # ci | classroom | full
data: str = "orl"  # "orl" (offline default), "lfw" (download) or a folder <identity>/<images>
seed: int = 0

# %% slideshow={"slide_type": "skip"}
import pandas as pd

from explainer import arms_race, paper, results, viz

viz.setup_notebook()
reports = results.recorded(data, profile, seed)
missing = results.missing_notebooks(reports)
print("Run these notebooks first, in order: " + ", ".join(missing) if missing else "All five experiments are here.")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The arms race in one picture
# For each attack, the protection left after each move of the trainer (1-NN on clean photos of
# the protected users; 1.0 = never recognised, 0.0 = always). Bars: this run. Black diamonds:
# the authors' figures for the same move where their code's README gives one (one FaceScrub
# user; Fawkes v1.0 and LowKey only). Read the detector bar with care: a filtered gallery has
# no photo of the protected user left, so they are still not recognised; what the filter buys
# is knowing *which* photos are cloaked, for the robust model or for later.

# %% slideshow={"slide_type": "-"}
race = results.arms_race(reports)
if race:
    arms_race.arms_race_figure(race).show()

# %% slideshow={"slide_type": "subslide"}
if race:
    display(pd.DataFrame(race).pivot_table(index="move", columns="attack", values="protection_rate", sort=False))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## This run, experiment by experiment

# %% slideshow={"slide_type": "-"}
for name, report in reports.items():
    print(f"{results.NOTEBOOK_OF[name]}: {results.headline(name, report, note=False)}\n")
if reports:
    settings = next(iter(reports.values()))["settings"]
    print(results.data_note(settings["data"], settings.get("protected_test_photos")))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What the paper concludes
# The post sums up the paper in four ideas:

# %% slideshow={"slide_type": "-"}
pd.DataFrame(paper.CONCLUSIONS, columns=["idea", "in a sentence"])

# %% [markdown] slideshow={"slide_type": "subslide"}
# And its closing argument, which is about people, not models:

# %% slideshow={"slide_type": "-"}
pd.DataFrame(paper.ARGUMENT, columns=["point", "in a sentence"])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## For discussion
# 1. A user cloaks their photos today with the best tool available. What would the tool have to
#    guarantee about models that do not exist yet? Is that a guarantee anyone can give?
# 2. In notebook 04, LowKey survived a newer face model and fell only to a general-purpose one
#    (in the paper) or held on (here, offline). Does that make LowKey a good choice, or only a
#    later loss? What would you need to know about the trainer to decide?
# 3. A detector can spot cloaked photos almost perfectly (notebook 03). Who could use that
#    knowledge, and against whom? Is cloaking then safer than not posting at all?
# 4. The trainer's adaptive model was chosen without ever seeing the protected users. Why does
#    that matter for whether the result would hold against real users?
# 5. The authors call for legislation rather than better cloaks. What would such a law have to
#    forbid, and how would anyone check that it is followed?
