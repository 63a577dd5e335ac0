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
# # 02 · The adaptive defence: the trainer moves second
#
# Notebook 01 showed cloaks fooling the model they were made against. But the cloaking tools
# are public: anyone can download Fawkes or use LowKey's web site, **including the company that
# scrapes your photos**. The paper's central argument is that this makes poisoning a losing
# game. The users must commit to their cloaks the day they upload; the trainer can adapt
# afterwards, for as long as the photos stay online.
#
# **The setting.** The trainer has black-box access to every cloaking tool. They take the
# scraped photos of *public* users (people who never cloaked anything), cloak some of them
# themselves, and so hold pairs: the same photo clean and cloaked. They fine-tune their
# extractor so that a cloaked photo lands where its clean version does. The protected users'
# photos are never used for this: the trainer does not know who they are. Then the protocol of
# notebook 01 is rerun, with the *same* cloaks the users made against the original model.
#
# **Two recipes.** (a) FaceCure's: fine-tune with a softmax over the public identities, the
# cloaked copies added under their true labels (`softmax`). (b) Embedding alignment: pull
# f(cloaked) onto the frozen original f0(clean), and keep clean photos where they were:
# ‖f(cloaked) − f0(clean)‖² + 2‖f(clean) − f0(clean)‖² (`align`).
#
# **Predict first.** The trainer never sees a clean photo of the protected users, only their
# cloaks. Can teaching the model on *other* people's clean/cloaked pairs undo cloaks it has
# never seen? What might it cost on ordinary photos?
#
# <details><summary>Details: a defender sized for a laptop</summary>
#
# The paper fine-tunes whole networks on GPUs. Here only FaceNet's later blocks train, on early
# activations computed once, from a few photos of many public users; the trainer cloaks them
# with the users' own modes but stops each run early (`public_steps`: the same budget, a
# fraction of the steps). It also cloaks the *other* scraped photos of its training users with
# LowKey alone (`public_lowkey_share`): LowKey's cloaks are the hardest to pull back on faces
# the model has not seen, and more distinct clean photos teach it to.
# </details>

# %% tags=["parameters"] slideshow={"slide_type": "skip"}
profile: str = "classroom"  # ci | classroom | full
data: str = "orl"  # "orl" (offline default), "lfw" (download) or a folder <identity>/<images>
seed: int = 0
widgets: bool = True  # interactive ipywidgets (live kernel); False shows static figures (HTML export)

# %% slideshow={"slide_type": "skip"}
import pandas as pd

from explainer import arms_race, experiments, paper, results, ui, viz

viz.setup_notebook()
scenario = experiments.Scenario(data, profile, seed)  # the data, profile, seed and cache every step uses

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Training the robust models
# For each recipe, three depths are tried: the last layer only (`last_linear`), the top
# Inception blocks (`repeat_3` up), and all but the first two convolutions (`conv2d_2b` up;
# their activations are computed once, so training costs about what `repeat_1` up did). The defender picks
# one **on held-out public users** (their photos cloaked by the defender, never the protected
# users' test photos): the lowest protection among models whose clean accuracy (on every
# public user's photos) stays within 2 points of the original. Then, as any model builder does once
# the settings are fixed, it trains the chosen depth **once more on every public user**, the
# held-out ones included: more people to learn from. That model is the one deployed and shown
# below (`refit` in the tables). The held-out users can no longer judge it, since it learnt
# their cloaks; people outside the setting can (later in this notebook). Trained models are
# cached; the first run takes minutes.

# %% slideshow={"slide_type": "-"}
run = experiments.run_adaptive(scenario)
pd.DataFrame(results.settings_table(run.settings)).set_index("setting")

# %% [markdown] slideshow={"slide_type": "subslide"}
# What the defender made: its own cloaks of public users' photos, one tab per attack.

# %% slideshow={"slide_type": "-"}
public = run.setting.canvases[run.public.all]
ui.CloakViewer({f"{a} {c.mode} (defender's)": (public, c) for a, c in run.public_cloaks.items()}).show(widgets)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The result
# Grey: protection against the original FaceNet (notebook 01's result). Red: against the robust
# FaceNet the defender chose, with the same cloaks and the same classifier. Markers: clean
# accuracy (nobody protected) of each model; the defence should not cost accuracy.
#
# The paper's defender cloaks its public photos with the same tools *and settings* as the users
# and trains whole networks on a GPU; the post reports the error on every user falling to 5-8 %,
# the authors' code 0.03 for both attacks (black diamonds). Read the bars as what this
# laptop-sized defender achieved. The table in the next section shows every model tried.

# %% slideshow={"slide_type": "-"}
for recipe in run.robust:
    rows = [r for r in run.results if r["recipe"] == recipe and r["classifier"] == "1nn"]
    viz.before_after_figure(rows, f"Robust FaceNet ({recipe}), 1-NN", paper.markers("adaptive"),
                            "paper (FaceCure README, one user)").show()

# %% slideshow={"slide_type": "subslide"}
table = pd.DataFrame(run.results)
table.pivot_table(index=["recipe", "attack"], columns="classifier",
                  values=["protection_rate_before", "protection_rate", "clean_accuracy_before", "clean_accuracy"])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What fails, and what works
# Every model the defender trained, with its score on the held-out public users (what the choice
# was made on) and on the protected users (what it achieved). The `refit` rows are the deployed
# models: their held-out score is on photos they trained on, so it says nothing. Training only the last layer or
# the top blocks barely moves the protection: the cloaks' damage is done in earlier features.
# The last row, when present, is the aligned model trained **without** LowKey's cloaks (nor the
# further LowKey pairs): a defender must have seen an attack to undo it.

# %% slideshow={"slide_type": "-"}
candidates = pd.DataFrame([r for r in run.candidates if r["classifier"] == "1nn"])
candidates["trained_on"] = candidates["trained_on"].map(", ".join)
candidates.pivot_table(index=["recipe", "start", "refit", "trained_on", "validation_protection", "train_s"],
                       columns="attack", values="protection_rate", sort=False)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## On people the recipe never saw
# A real trainer cannot test its defence on its victims: it does not know who they are. This
# notebook's defender picks each recipe's depth on held-out public users only, and `classroom`'s
# number of epochs was chosen the same way. But the recipe's other fixed settings (the depths it
# tries, the learning rate, how many extra LowKey pairs) were set by the authors of this
# explainer, over runs on the LFW folder in which that setting's protected users' results were
# visible ("Settings chosen on", above). A figure on users one tuned while watching flatters the
# recipe.
#
# So the same original and robust models are scored again with the protected users swapped for
# **people from outside the setting**, whom nothing was ever chosen on: the same public users,
# the same tools and presets, new victims. Hatched bars: those people. Where they stand well above
# the plain bars, the recipe was fitted to its test users, and the hatched figure is the one a
# trainer could expect. The paper's robust model leaves 0.03 (FaceCure README); how its settings
# were chosen is not reported. On ORL's `classroom` profile every one of the 40 people is already
# in the setting, so only the plain bars appear; run on LFW to see both.
#
# What helped most on those people was not a cleverer loss but more people: on LFW `classroom`,
# training the chosen recipe once more with the held-out users' pairs (a quarter more people)
# brought LowKey's protection on people outside the setting to less than half of what the same
# recipe trained without them left, over three training seeds (the results page, "adaptive
# recipe candidates"). The paper's defender had thousands of people; this one has a few dozen.

# %% slideshow={"slide_type": "-"}
arms_race.users_compared_figure(run.users_compared).show()
print(results.users_compared_text(run.to_json()))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Why not all the way? The defender learnt its own cloaks
# How far a cloak still moves its photo (squared distance between unit embeddings of the cloak
# and of the clean photo it was made from), under the original FaceNet and each chosen robust
# model as the held-out users chose it (before it was trained again with them), for the cloaks
# the defender trained on, for held-out public users' and for the
# protected users'. The last row is the scale: two clean photos of one person. Where the robust
# model pulls its training pairs much closer than anyone else's cloaks, it has learnt those
# cloaks rather than the attack: a laptop-sized defender has a few hundred pairs where the
# paper's had tens of thousands. More pairs, and more distinct clean photos, narrow the gap.

# %% slideshow={"slide_type": "-"}
pd.DataFrame(experiments.adaptive_generalisation(run))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Watching the embeddings move
# Clean photos of a few public users, the protected users' clean test photos, and their cloaked
# scraped photos ("NAME (cloaked)"). Switch the model: under the original FaceNet the cloaks sit
# away from their owner; under the robust one they fall back onto them.

# %% slideshow={"slide_type": "-"}
coords, groups, names = experiments.adaptive_umap(run, attack="fawkes-v1.0", seed=seed)
ui.ModelUmapWidget(coords, groups, names, start=list(coords)[-1]).show(widgets)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The trainer adapting, epoch by epoch
# The same cloaks of one protected user, as the trainer's model saw them before training and
# after each epoch (recorded while it trained). Press play: the cloaks walk back to their owner's
# clean photos while everyone else stays where they were.

# %% slideshow={"slide_type": "-"}
arms_race.adaptive_animation(experiments.adaptive_epochs(scenario, run)).show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## A photo already online
# The post remarks that unperturbed photos a user posted before cloaking (or that friends
# posted) undermine the cloaks. Add the clean version of **one** scraped photo per protected user
# to the gallery, beside all their cloaks:

# %% slideshow={"slide_type": "-"}
pd.DataFrame(run.clean_photo).pivot_table(index="model", columns="attack", values="protection_rate")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What the paper found, and what this run found

# %% slideshow={"slide_type": "-"}
pd.DataFrame(results.compare("adaptive", run.to_json()))

# %% slideshow={"slide_type": "subslide"}
print(results.headline("adaptive", run.to_json()))

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Take-away.** The users moved first and cannot change their cloaks after upload; the trainer
# moves second, with the same public tools, and can keep improving its robust model for as long
# as the photos stay online (here: more public cloaks, made at the users' settings, and deeper
# fine-tuning; the `full` profile does both). Notebook 03 shows a cheaper move still: spotting
# which photos are cloaked.
