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
# # 06 · Your photo: does the cloak protect *you*?
#
# Fawkes users keep asking the same question (fawkes issues #82 and #152): *how do I test
# whether my protection works?* This notebook answers it the way the paper's experiments do,
# for one person: you.
#
# 1. Your photos are detected and aligned, then cloaked with the attack and mode you choose.
# 2. The cloaked photos are "posted": they join a gallery of other people's photos, as a
#    scraper would collect them.
# 3. Every model of the timeline is asked *"who is this?"* about a **clean** photo of you, the
#    kind a camera takes of you in the street. The offline models always answer; the online
#    ones join when their weights are present.
#
# Without uploads the notebook uses the built-in sample faces (a person of the default data
# set). With the widget at the end, upload your own photos: two or more work best, since the
# last one stays clean and is the question. Nothing leaves your machine, and nothing is
# written outside the cache.
#
# **Predict first.** The cloak is made against two 2017 models. Which models of the timeline
# do you expect to still name you, and would a JPEG re-save by a social network change that?

# %% tags=["parameters"] slideshow={"slide_type": "skip"}
profile: str = "classroom"  # ci | classroom | full
data: str = "orl"  # the other people of the gallery: "orl" (offline default), "lfw" or a folder
seed: int = 0
widgets: bool = True  # the upload widget needs a live kernel; False for headless runs
attack: str = "fawkes-v1.0"  # fawkes-v0.3 | fawkes-v1.0 | lowkey
mode: str = ""  # empty: the profile's mode for this attack
photos: list = []  # paths of your photos; empty: the built-in sample faces

# %% slideshow={"slide_type": "skip"}
import pandas as pd

from explainer import attacks, experiments, profiles, results, ui, viz

viz.setup_notebook()
scenario = experiments.Scenario(data, profile, seed)  # the data, profile, seed and cache every step uses
chosen_mode = mode or profiles.resolve(profile).users.modes[attack]
attack, chosen_mode

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Detect, align, cloak
# Each photo is read safely (EXIF rotation, CMYK, 16-bit and transparency are handled, huge
# photos are downscaled, broken files are refused with one line), the largest face is taken,
# and the face is cloaked. The notes say what happened to each photo.

# %% slideshow={"slide_type": "-"}
run = experiments.run_your_photo(scenario, photos or None, attack, chosen_mode)
print("\n".join(run.messages()))
pd.DataFrame(results.settings_table(run.settings)).set_index("setting")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Before and after
# Left what you would have posted, middle what the cloak makes of it, right the change
# amplified ten times.

# %% slideshow={"slide_type": "-"}
viz.cloak_comparison_figure(run.enrolled[0], run.cloaked[0], title=(
    f"{attack} {run.result.mode}: DSSIM {run.result.dssim[0]:.4f}, L-inf {run.result.linf[0] * 255:.0f}/255")).show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Who is this?
# For each model, in publication order: how often it names you when your posted photos were
# clean (green) and when they were cloaked (red). The cloak protects you from a model only
# where the red bar is low. "attacked" marks the models the cloak was optimised against.

# %% slideshow={"slide_type": "-"}
viz.who_is_this_figure(run.answers).show()
[{k: r.get(k, "needs download") for k in ("model", "model_year", "attacked", "recognised_clean", "recognised_cloaked", "answer")}
 for r in run.answers]

# %% [markdown] slideshow={"slide_type": "subslide"}
# **What to read from it.** The models the cloak was made against usually fail to name you:
# the cloak works against *them*. A model published later was never in the attacker's
# optimisation loop, and often names you anyway: that is notebook 04's time travel, for one
# person. A cloak is a bet on the models of today, and your photos stay online for the
# models of tomorrow.
#
# ## After the upload: what a social network does to your photo
# Sites re-compress uploads as JPEG and downscale them (fawkes issue #117). Each row is the
# protection rate (1 − how often you are named) after that processing; the bottom row is how
# often each model fails to name you when your posted photos are clean.

# %% slideshow={"slide_type": "-"}
viz.protection_heatmap_figure(run.shared, title="Protection after the upload is processed (1-NN)").show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What this run found
# The paper's authors ran the same test for one FaceScrub user (FaceCure's README): cloaks that
# protected fully on the model they targeted protected not at all on a newer face model
# (Fawkes v1.0 on MagFace: 0.00), and LowKey's only CLIP broke (0.24). For the photos above:

# %% slideshow={"slide_type": "-"}
print(results.your_photo_headline(run.to_json()))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Try your own photos
# Upload one or more photos of yourself (JPEG, PNG, ...), pick an attack and a mode, and press
# the button. A photo with several faces uses the largest unless you set *face no.*; a file
# that is not a usable photo gets one line saying why, and the others go on. Cloaking takes
# about 5–20 s per photo on a laptop CPU at the stronger modes.
#
# The same from a terminal: `explainer cloak me1.jpg me2.jpg --attack fawkes-v1.0 --mode high`.

# %% slideshow={"slide_type": "-"}
modes = {a: attacks.modes(a) for a in attacks.ATTACKS}
ui.YourPhotoWidget(
    lambda files, a, m, face: experiments.run_your_photo(scenario, files or None, a, m, face_choice=face),
    modes, attack, chosen_mode).show(widgets)

