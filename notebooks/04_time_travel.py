# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Time is all you need: the oblivious defence
#
# A cloak is optimised once, against the extractors that exist the day the photo is posted.
# The photo then stays online for years. The trainer does not need to adapt (notebook 02) or
# detect anything (notebook 03): they can simply **wait** for a better extractor and re-embed the
# photos they scraped long ago. The paper calls this the *oblivious* trainer.
#
# Here the "old" extractors are the 2017 FaceNet and dlib ResNet the attacks were made against;
# the newest offline extractor is OpenCV's SFace (2021), which no attack here ever saw.

# %% tags=["parameters"]
profile: str = "classroom"  # ci | classroom | full
data: str = "orl"  # "orl" (offline default), "lfw" (download) or a folder <identity>/<images>
seed: int = 0
extra_onnx: str = ""  # optional: an ArcFace-layout ONNX extractor to add, e.g. InsightFace's w600k_mbf.onnx
extra_onnx_year: int = 2021

# %%
import pandas as pd

from explainer import attacks, experiments, models, viz

viz.setup_notebook()
if extra_onnx:  # one more column below (see bench/newer_extractor.py for where to get one)
    models.register_onnx(extra_onnx, year=extra_onnx_year)

# %% [markdown]
# ## The timeline
# Extractors by publication year (filled: usable offline here; open: needs a download), and the
# attacks' release dates (dotted red).

# %%
rows = [dict(models.model_info(n).as_dict(), available=models.availability(n)[0]) for n in models.model_names()]
viz.timeline_figure(rows, [(year, name) for name, year in attacks.RELEASED.items()]).show()

# %% [markdown]
# ## Old cloaks against every extractor
# The protected users' cloaks from notebook 01 (same photos, same cloaks), scored with 1-NN on
# each extractor. "attacked" marks the models a cloak was optimised against. The last row is
# each extractor's error with nobody protected: a protection rate near that row means the cloak
# does nothing. Online extractors appear as "needs download" columns until their weights are here.

# %%
run = experiments.run_time_travel(data, profile, seed)
viz.protection_heatmap_figure(run.results).show()

# %%
table = pd.DataFrame([r for r in run.results if r["available"]])
table.pivot_table(index="attack", columns=["model_year", "model"], values="protection_rate")

# %% [markdown]
# ## Which cloaks survive the newest model?
# A cloak "fails" on the newest offline extractor when its protection there is within 10 points
# of that extractor's clean error: the oblivious trainer only had to wait. Read
# `still_protects` for each attack, computed on this run. A cloak that still protects there is not
# a win for the user either: LowKey was built to transfer (an ensemble, blurred views), and the
# paper's answer is a robust newer model. Below, the adaptive model of notebook 02 meets the
# same photos, and a linear probe tries the robust-newer-model recipe offline: check whether
# each one helps. Is it SFace's doing? Set the `extra_onnx` parameter to another extractor's
# ONNX file (InsightFace's `w600k_mbf.onnx`, see `bench/newer_extractor.py`): it joins the heatmap.

# %%
pd.DataFrame(run.verdicts())

# %% [markdown]
# ## You can't regain privacy by switching attacks
# A user's photos were cloaked with Fawkes v0.3 and scraped. Fawkes v1.0 (or LowKey) comes out;
# the user re-uploads the same photos with the new cloaks. The trainer now holds **both**
# versions of every photo: the old cloaks stay online. The newest extractor, or the adaptive
# model of notebook 02, only needs one version to be harmless.

# %%
pd.DataFrame(run.switching).pivot_table(index=["old", "new"], columns="model", values="protection_rate")

# %% [markdown]
# ## A robust newer model: the paper's "fine-tuned CLIP"
# The paper also fine-tunes CLIP on public users' clean and cloaked photos. Offline we apply the
# same recipe to the newest extractor here: a linear probe on its features, trained on the
# defender's clean and cloaked public photos (when CLIP's weights are present, it is probed too).

# %%
pd.DataFrame(run.probe)[["attack", "model", "protection_rate_base", "protection_rate", "clean_error"]]

# %% [markdown]
# **Take-away.** A cloak has to fool every model that will ever see the photo; the trainer only
# needs one that it does not fool. Notebook 05 shows how a trainer keeps the accuracy of the best
# model while gaining the robustness of another.
