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
# # 04 · Time is all you need: the oblivious defence
#
# A cloak is optimised once, against the extractors that exist the day the photo is posted.
# The photo then stays online for years. The trainer does not need to adapt (notebook 02) or
# detect anything (notebook 03): they can simply **wait** for a better extractor and re-embed the
# photos they scraped long ago. The paper calls this the *oblivious* trainer.
#
# Here the "old" extractors are the 2017 FaceNet and dlib ResNet the attacks were made against.
# Between them and today sits **2018's FaceNet trained on CASIA-WebFace**, the "WebFace" model of
# the paper's era, and the newest offline extractor is OpenCV's SFace (2021). No attack here saw
# either by default.
#
# <details><summary>Why Fawkes v0.3 attacks the 2017 FaceNet here, not the WebFace model</summary>
#
# In the paper, Fawkes v0.3's cloaks were made against a WebFace-trained extractor. Here all three
# tools attack the same 2017 FaceNet, so that notebooks 01 to 05 compare the tools on one model in
# one trainer's hands, and the adaptive trainer of notebook 02 fine-tunes that model. The WebFace
# FaceNet then plays what the paper shows it to be: another model of the time, which the cloaks
# were not made for. To cloak against it as v0.3 did, run
# `explainer cloak photo.jpg --attack fawkes-v0.3 --models facenet-casia`.
# </details>
#
# **Predict first.** Will a face model published a year after the cloaks still be fooled by
# them? Does it matter which tool made the cloak?

# %% tags=["parameters"] slideshow={"slide_type": "skip"}
profile: str = "classroom"  # ci | classroom | full
data: str = "orl"  # "orl" (offline default), "lfw" (download) or a folder <identity>/<images>
seed: int = 0
extra_onnx: str = ""  # optional: an ArcFace-layout ONNX extractor to add, e.g. InsightFace's w600k_mbf.onnx
extra_onnx_year: int = 2021

# %% slideshow={"slide_type": "skip"}
import pandas as pd

from explainer import arms_race, attacks, experiments, models, results, viz

viz.setup_notebook()
scenario = experiments.Scenario(data, profile, seed)  # the data, profile, seed and cache every step uses
if extra_onnx:  # one more column below (see bench/newer_extractor.py for where to get one)
    models.register_onnx(extra_onnx, year=extra_onnx_year)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The timeline
# Extractors by publication year (filled: usable offline here; open: needs a download), and the
# attacks' release dates (dotted red).

# %% slideshow={"slide_type": "-"}
rows = [dict(models.model_info(n).as_dict(), available=models.availability(n)[0]) for n in models.model_names()]
viz.timeline_figure(rows, [(year, name) for name, year in attacks.RELEASED.items()]).show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Old cloaks against every extractor
# The protected users' cloaks from notebook 01 (same photos, same cloaks), scored with 1-NN on
# each extractor. "attacked" marks the models a cloak was optimised against. The last row is
# each extractor's error with nobody protected: a protection rate near that row means the cloak
# does nothing. Online extractors appear as "needs download" columns until their weights are here.

# %% slideshow={"slide_type": "-"}
run = experiments.run_time_travel(scenario)
viz.protection_heatmap_figure(run.results).show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# The trainer waits: press play (or move the slider) to go from year to year. Each year's model
# meets the same old cloaks; the dashed line is that model's error with nobody protected.

# %% slideshow={"slide_type": "-"}
arms_race.time_travel_animation(run.results).show()

# %% slideshow={"slide_type": "subslide"}
table = pd.DataFrame([r for r in run.results if r["available"]])
table.pivot_table(index="attack", columns=["model_year", "model"], values="protection_rate")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## As the paper found it
# In the authors' code (one FaceScrub user), Fawkes v1.0's cloaks protect fully on the
# extractor they were made against (1.00) and not at all on **MagFace**, a face model of 2021
# (0.00). **LowKey** fares better: it still protects fully on MagFace (1.00). Only **CLIP**, a
# general-purpose image model trained on 400 million image-text pairs from the web, far more
# and far more varied data than any face model, brought LowKey down, to 0.24.
#
# So if LowKey still protects on SFace below, that is the paper's MagFace result, not a
# contradiction of it: a newer *face* model trained on faces like the old ones is not always
# enough. The model that breaks LowKey in the paper is CLIP. Its weights download on first
# use, so here it is a "needs download" column. On a machine with internet, run once
#
# ```
# .venv/bin/explainer download clip-vit-b32-openai
# ```
#
# and rerun this notebook: the column fills in. (Set `extra_onnx` to another face model's ONNX
# file, such as InsightFace's `w600k_mbf.onnx`, to add one more 2021 face model: see
# `bench/newer_extractor.py`.)

# %% slideshow={"slide_type": "-"}
pd.DataFrame(results.compare("time-travel", run.to_json()))

# %% [markdown] slideshow={"slide_type": "subslide"}
# Per attack: does the cloak still protect on the newest offline extractor? It "fails" there
# when its protection is within 10 points of that extractor's clean error.

# %% slideshow={"slide_type": "-"}
pd.DataFrame(run.verdicts())

# %% [markdown] slideshow={"slide_type": "slide"}
# ## You can't regain privacy by switching attacks
# A user's photos were cloaked with an older tool and scraped. A newer tool comes out; the user
# re-uploads the same photos with the new cloaks. Two galleries tell the story:
#
# * **new cloak alone** (orange): what the user hopes, as if the old photos were gone. Against
#   the models the new tool attacks, the user looks protected again.
# * **old and new together** (red): what really happens. The old photos were scraped years ago
#   and stay in the trainer's data; a model the *old* cloak does not fool finds them, and the
#   new cloak changes nothing.
#
# The judges are the attacker's-era models (FaceNet; dlib's ResNet, which Fawkes v1.0 and
# LowKey attack but Fawkes v0.3 did not), the newest offline model, and the adaptive model of
# notebook 02. Black marks: each judge's clean error.

# %% slideshow={"slide_type": "-"}
arms_race.switching_figure(run.switching).show()

# %% slideshow={"slide_type": "subslide"}
pd.DataFrame(run.switching).pivot_table(index=["old_attack", "new_attack", "uploads"], columns="model",
                                        values="protection_rate", sort=False)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Why a linear probe is not the paper's CLIP
# The post says LowKey failed against a fine-tuned CLIP. Offline there is no CLIP, and a
# tempting stand-in is to fine-tune the newest model here ourselves: a linear probe on SFace's
# features, trained on the defender's clean and cloaked public photos. It is **not** the same
# move: compare `protection_rate` (with the probe) against `protection_rate_base` (SFace alone)
# below before crediting it with anything. CLIP brings features learnt
# from hundreds of millions of images that LowKey's face-model ensemble never targeted. A probe
# only re-weights SFace's 128 features, the very features LowKey's cloaks already reach, and
# learns from a few hundred pairs of a few dozen people: it can fit those pairs and stretch the
# directions the cloaks push. What breaks a transferable cloak is a model that sees faces
# differently, not a re-weighting of one it already fools.

# %% slideshow={"slide_type": "-"}
pd.DataFrame(run.probe)[["attack", "model", "protection_rate_base", "protection_rate", "clean_error"]]

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What this run found

# %% slideshow={"slide_type": "-"}
print(results.headline("time-travel", run.to_json()))

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Take-away.** A cloak has to fool every model that will ever see the photo; the trainer only
# needs one that it does not fool. Notebook 05 shows how a trainer keeps the accuracy of the best
# model while gaining the robustness of another.
