"""The cloaking attacks, the users' side of the arms race: Fawkes v0.3, Fawkes v1.0 and LowKey.

The original tools are TensorFlow programs that download their own extractors; these are
re-implementations in PyTorch, run against extractors of the zoo (``explainer.models``).
Every attack works on canvases (RGB in [0, 1], see ``explainer.faces``), runs batched on CPU
or GPU with an explicit seed, caches each finished batch on disk, and returns the cloaks as
**8-bit images**: what a user uploads, and what every measurement here is made on.

Default extractors tell the time-travel story: the "attacker's era" models are
``facenet-keras`` (Fawkes v0.3) and ``facenet-keras`` + ``dlib-resnet`` (the ensembles of
Fawkes v1.0 and LowKey); ``sface`` is the "future" model, never attacked by default. Pass
``models=`` to change that.

LowKey's perceptual term is LPIPS (AlexNet). Its AlexNet backbone downloads at run time, so
offline we use a documented substitute, ``1 - SSIM`` (kornia); results say which one ran
(``CloakResult.perceptual``).
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import models as zoo
from .tensors import is_grayscale, to_tensor, to_uint8

ATTACKS = ("fawkes-v0.3", "fawkes-v1.0", "lowkey")
DEFAULT_MODELS = {"fawkes-v0.3": ("facenet-keras",), "fawkes-v1.0": ("facenet-keras", "dlib-resnet"),
                  "lowkey": ("facenet-keras", "dlib-resnet")}
RELEASED = {"fawkes-v0.3": 2020.55, "fawkes-v1.0": 2021.1, "lowkey": 2021.35}  # July 2020, early 2021, ICLR 2021

# (dssim budget rho, steps, learning rate) per mode, as in the tools' presets.
FAWKES_V03_MODES = {"min": (0.002, 20, 40), "low": (0.003, 50, 35), "mid": (0.005, 200, 20),
                    "high": (0.008, 500, 10), "ultra": (0.01, 1000, 8)}
FAWKES_V10_MODES = {"low": (0.004, 40, 25), "mid": (0.012, 75, 20), "high": (0.017, 150, 15)}
LOWKEY_SETTINGS = {"step": 0.0025, "steps": 50, "start": 0.005, "lpips_weight": 0.05, "blur_kernel": 7,
                   "blur_sigma": 3.0}
FAWKES_CONST = 1e9  # DSSIM penalty weight: in effect a hard budget
V10_BOUND = 15 / 255  # Fawkes v1.0 clips the per-pixel change
V10_START = 2 / 255  # random start: the untargeted objective has zero gradient at x' = x
TARGET_POOL_FARTHEST = 20
ATTACK_VERSION = 4  # part of every cloak's cache key: bump when the attacks' shared machinery changes
# One attack's own revision, also in its cloaks' keys: bumped when only its algorithm changes, so
# that the other attacks' cached cloaks stay valid (LowKey 2: its loss as in LowKey's paper).
ATTACK_REVISIONS = {"lowkey": 2}


def steps_of(attack: str, mode: str, steps: int | None = None) -> int:
    """How many optimisation steps ``attack`` takes in ``mode``: ``steps`` when given (a shortened
    run: Fawkes keeps the mode's budget and learning rate; LowKey keeps its reach, steps x step
    size), else the mode's preset."""
    if steps:
        return steps
    if attack == "fawkes-v0.3":
        return FAWKES_V03_MODES[mode][1]
    if attack == "fawkes-v1.0":
        return FAWKES_V10_MODES[mode][1]
    return LOWKEY_SETTINGS["steps"]


def modes(attack: str) -> list[str]:
    return list({"fawkes-v0.3": FAWKES_V03_MODES, "fawkes-v1.0": FAWKES_V10_MODES,
                 "lowkey": {"paper": None}}[attack])


@dataclass
class CloakResult:
    """Cloaked 8-bit canvases and what they cost and achieved, per image.

    ``dssim`` and ``linf`` (in [0, 1] pixel units) compare the saved 8-bit cloak with the
    original; ``shift[model]`` is the L2 distance between their unit embeddings.
    ``iterates`` (T, N, H, W, 3) uint8, at ``iterate_steps``, when recorded.
    """

    attack: str
    mode: str
    models: tuple[str, ...]
    cloaked: np.ndarray
    dssim: np.ndarray
    linf: np.ndarray
    shift: dict[str, np.ndarray]
    perceptual: str = ""
    targets: np.ndarray | None = None  # Fawkes v0.3: the target identity of each image
    iterates: np.ndarray | None = None
    iterate_steps: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    precision: str = "fp32"  # of the attack's own forward/backward passes (``attack_precision``)

    def subset(self, which) -> "CloakResult":
        """The cloaks of some photos only (a boolean mask or indices): every per-photo field sliced."""
        return replace(self, cloaked=self.cloaked[which], dssim=self.dssim[which], linf=self.linf[which],
                       shift={k: v[which] for k, v in self.shift.items()},
                       targets=self.targets[which] if self.targets is not None else None,
                       iterates=self.iterates[:, which] if self.iterates is not None else None)


# Measures ---------------------------------------------------------------------------------------

def dssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural dissimilarity (1 - SSIM) / 2 per image, SSIM with an 11x11 Gaussian window (kornia)."""
    import kornia
    return (1.0 - kornia.metrics.ssim(x, y, window_size=11, max_val=1.0).mean(dim=(1, 2, 3))) / 2.0


def grayscale_projection(x: torch.Tensor, gray: torch.Tensor) -> torch.Tensor:
    """Keep grayscale photos grayscale: their three channels are replaced by the channel mean."""
    if not gray.any():
        return x
    mean = x.mean(dim=1, keepdim=True).expand_as(x)
    return torch.where(gray[:, None, None, None], mean, x)


# Precision of the attacks' passes --------------------------------------------------------------

PRECISIONS = ("fp32", "bf16")


@functools.lru_cache(maxsize=1)
def _cpu_has_native_bf16() -> bool:
    try:  # Linux: AVX512-BF16 or AMX; elsewhere oneDNN would emulate bf16, slower than float32
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def attack_precision(device: str | torch.device = "cpu") -> str:
    """``bf16`` where the hardware computes bfloat16 natively (recent x86 CPUs, recent GPUs):
    an attack step costs about half; else ``fp32``. ``EXPLAINER_ATTACK_PRECISION`` overrides
    (``fp32`` reproduces a cloak made on other hardware). Budgets (DSSIM) and every evaluation
    stay float32; only the extractors inside the attack loop run under autocast."""
    forced = os.environ.get("EXPLAINER_ATTACK_PRECISION")
    if forced:
        if forced not in PRECISIONS:
            raise ValueError(f"EXPLAINER_ATTACK_PRECISION={forced!r}; choose one of {', '.join(PRECISIONS)}")
        return forced
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and _cpu_has_native_bf16() else "fp32"


class Autocast(torch.nn.Module):
    """An extractor run under bfloat16 autocast (``Extractor.forward`` returns float32 either
    way): what the attack loops call in ``bf16``."""

    def __init__(self, extractor: torch.nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.extractor(x)


def attack_extractor(extractor: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The extractor (or any module) as an attack loop calls it in ``precision``; the robust
    training of ``defences`` runs its trained stages the same way."""
    return Autocast(extractor) if precision == "bf16" else extractor


def _features(models: list[zoo.Extractor], x: torch.Tensor) -> list[torch.Tensor]:
    return [m(x) for m in models]


def feature_gain(features: list[torch.Tensor], clean: list[torch.Tensor]) -> torch.Tensor:
    """Per image, sum over models of ||phi(x') - phi(x)||^2 / ||phi(x)||: how far the cloak moved."""
    return sum(((f - c) ** 2).sum(dim=1) / c.norm(dim=1) for f, c in zip(features, clean))


def target_loss(targets: list[torch.Tensor], features: list[torch.Tensor]) -> torch.Tensor:
    """Per image, sum over models of ||phi_t - phi(x')|| / ||phi_t||: how far from the target (Fawkes v0.3)."""
    return sum((t - f).norm(dim=1) / t.norm(dim=1) for t, f in zip(targets, features))


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Round to 8 bits and back: the image a user would actually upload."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


def straight_through_quantise(x: torch.Tensor) -> torch.Tensor:
    """The 8-bit image in the forward pass, the identity in the backward pass (straight-through)."""
    return x + (quantise(x) - x).detach()


@torch.no_grad()
def measure(original: torch.Tensor, cloaked_u8: np.ndarray, model_names, batch_size: int = 32
            ) -> tuple[np.ndarray, np.ndarray, dict]:
    """DSSIM, L-infinity and per-model embedding shift of saved 8-bit cloaks."""
    d, linf, shift = [], [], {name: [] for name in model_names}
    for start in range(0, len(cloaked_u8), batch_size):
        clean = original[start:start + batch_size]
        cloaked = to_tensor(cloaked_u8[start:start + batch_size], original.device)
        d.append(dssim(cloaked, clean).cpu().numpy())
        linf.append((cloaked - clean).abs().amax(dim=(1, 2, 3)).cpu().numpy())
        for name in model_names:
            m = zoo.load_model(name, original.device)
            shift[name].append((m(cloaked) - m(clean)).norm(dim=1).cpu().numpy())
    cat = lambda parts: np.concatenate(parts) if parts else np.empty(0)  # noqa: E731
    return cat(d), cat(linf), {k: cat(v) for k, v in shift.items()}


# Fawkes -----------------------------------------------------------------------------------------

def _to_tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6))


def _from_tanh(w: torch.Tensor) -> torch.Tensor:
    return (torch.tanh(w) + 1) / 2


def _record(steps: int, every: int | None) -> set[int]:
    if not every:
        return set()
    return set(range(0, steps + 1, every)) | {steps}


def fawkes_v03_batch(x: torch.Tensor, models: list[zoo.Extractor], target_emb: list[torch.Tensor], mode: str,
                     seed: int, record_every: int | None = None, step_hook=None, steps: int | None = None):
    """Fawkes v0.3 on a batch: pull each photo's features toward its target embedding under a DSSIM budget.

    ``target_emb[k]`` (N, D) is phi_t for model k. Loss, minimised with Adadelta in tanh space:
    const * max(DSSIM - rho, 0)^2 + sum_k ||phi_t - phi_k(x')|| / ||phi_t||. The learning rate
    decays x0.8 every max_iter/3 steps; the best iterate within the budget is kept.
    """
    rho, _, lr = FAWKES_V03_MODES[mode]
    steps = steps_of("fawkes-v0.3", mode, steps)
    torch.manual_seed(seed)
    gray = _gray(x)
    w = _to_tanh(x).clone().requires_grad_(True)
    opt = torch.optim.Adadelta([w], lr=lr, rho=0.95, eps=1e-8)
    decay_every = max(1, steps // 3)
    best = x.clone()
    best_loss = torch.full((len(x),), float("inf"), device=x.device)
    record = _record(steps, record_every)
    iterates = [x.clone()] if 0 in record else []
    for step in range(1, steps + 1):
        xa = grayscale_projection(_from_tanh(w), gray)
        d = dssim(straight_through_quantise(xa), x)  # the budget is that of the uploaded 8-bit image
        feature_loss = target_loss(target_emb, _features(models, xa))
        loss = FAWKES_CONST * F.relu(d - rho) ** 2 + feature_loss
        with torch.no_grad():
            improved = (d <= rho) & (feature_loss < best_loss)
            best[improved] = xa.detach()[improved]
            best_loss[improved] = feature_loss.detach()[improved]
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if step % decay_every == 0:
            for group in opt.param_groups:
                group["lr"] *= 0.8
        if step in record:
            iterates.append(best.clone())
        if step_hook:
            step_hook(step)
    with torch.no_grad():  # the final iterate counts too
        xa = grayscale_projection(_from_tanh(w), gray)
        feature_loss = target_loss(target_emb, _features(models, xa))
        improved = (dssim(quantise(xa), x) <= rho) & (feature_loss < best_loss)
        best[improved] = xa[improved]
    return best, iterates


def fawkes_v10_batch(x: torch.Tensor, models: list[zoo.Extractor], mode: str, seed: int,
                     record_every: int | None = None, step_hook=None, steps: int | None = None):
    """Fawkes v1.0 on a batch: push features away from the photo's own, over an ensemble.

    Maximises sum_k ||phi_k(x') - phi_k(x)||^2 / ||phi_k(x)|| (unit features) with the penalty
    const * max(DSSIM - rho, 0)^2; a per-image weight c_diff on the feature term is doubled
    when DSSIM < 0.9 rho and halved when DSSIM > 1.1 rho. Per-pixel change clipped to 15/255,
    random start, Adadelta in tanh space.
    """
    rho, _, lr = FAWKES_V10_MODES[mode]
    steps = steps_of("fawkes-v1.0", mode, steps)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    gray = _gray(x)
    with torch.no_grad():
        clean = [f.detach() for f in _features(models, x)]
        start = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device) * V10_START
        start = grayscale_projection(start, gray)
    w = _to_tanh((x + start).clamp(0, 1)).clone().requires_grad_(True)
    opt = torch.optim.Adadelta([w], lr=lr, rho=0.95, eps=1e-8)
    c_diff = torch.ones(len(x), device=x.device)
    best = x.clone()
    best_gain = torch.full((len(x),), -float("inf"), device=x.device)
    record = _record(steps, record_every)
    iterates = [x.clone()] if 0 in record else []

    def cloak_of(w):
        xa = grayscale_projection(_from_tanh(w), gray)
        return x + (xa - x).clamp(-V10_BOUND, V10_BOUND)

    for step in range(1, steps + 1):
        xa = cloak_of(w)
        d = dssim(straight_through_quantise(xa), x)  # the budget is that of the uploaded 8-bit image
        gain = feature_gain(_features(models, xa), clean)
        loss = FAWKES_CONST * F.relu(d - rho) ** 2 - c_diff * gain
        with torch.no_grad():
            ok = (d <= rho) & (gain > best_gain)
            best[ok] = xa.detach()[ok]
            best_gain[ok] = gain.detach()[ok]
            c_diff = torch.where(d < 0.9 * rho, c_diff * 2, torch.where(d > 1.1 * rho, c_diff / 2, c_diff))
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if step in record:
            iterates.append(best.clone())
        if step_hook:
            step_hook(step)
    with torch.no_grad():
        xa = cloak_of(w)
        gain = feature_gain(_features(models, xa), clean)
        ok = (dssim(quantise(xa), x) <= rho) & (gain > best_gain)
        best[ok] = xa[ok]
    return best, iterates


# LowKey -----------------------------------------------------------------------------------------

_LPIPS = None


def perceptual_distance():
    """LPIPS (AlexNet) when its backbone weights are on disk; else the substitute 1 - SSIM.

    Returns (name, function of (x, y) -> per-image distance).
    """
    global _LPIPS
    try:
        if _LPIPS is None:
            from torch.hub import get_dir
            alexnet = os.path.join(get_dir(), "checkpoints", "alexnet-owt-7be5be79.pth")
            if not os.path.exists(alexnet):
                raise FileNotFoundError(alexnet)
            import lpips
            _LPIPS = lpips.LPIPS(net="alex", verbose=False).eval().requires_grad_(False)
        net = _LPIPS
        return "lpips-alex", lambda x, y: net.to(x.device)(x * 2 - 1, y * 2 - 1).flatten()
    except (FileNotFoundError, ImportError, OSError, RuntimeError):
        import kornia
        return "1-ssim (LPIPS substitute, offline)", lambda x, y: 1.0 - kornia.metrics.ssim(
            x, y, window_size=11, max_val=1.0).mean(dim=(1, 2, 3))


def lowkey_features(models: list[zoo.Extractor], x: torch.Tensor, smoothed: bool = True) -> list[torch.Tensor]:
    """LowKey's ensemble: each model on the image (and, with ``smoothed``, on a Gaussian-smoothed
    copy), l2norm(f(x) + f(flip x)); the smoothed views follow the plain ones."""
    import kornia
    k, s = LOWKEY_SETTINGS["blur_kernel"], LOWKEY_SETTINGS["blur_sigma"]
    views = (x, kornia.filters.gaussian_blur2d(x, (k, k), (s, s))) if smoothed else (x,)
    out = []
    for variant in views:
        flipped = torch.flip(variant, dims=[3])
        for m in models:
            out.append(F.normalize(m(variant) + m(flipped), dim=1))
    return out


def lowkey_batch(x: torch.Tensor, models: list[zoo.Extractor], seed: int, record_every: int | None = None,
                 step_hook=None, steps: int | None = None):
    """LowKey on a batch: signed-gradient ascent of mean((F(x') - F(x))^2 / ||F(x)||) - 0.05 * LPIPS.

    As in LowKey's paper and code, both the plain and the smoothed view of the cloak are pushed
    away from the features of the plain clean photo F(x), and the mean runs over views, models
    and embedding dimensions: that scale is what the perceptual weight 0.05 is set against.
    Step 0.0025, 50 iterations, uniform start within +-0.005, pixels clamped to [0, 1]. A
    shortened run (``steps``) takes larger steps so that it can reach as far (0.125) as the paper's.
    """
    steps = steps_of("lowkey", "paper", steps)
    step_size = LOWKEY_SETTINGS["step"] * LOWKEY_SETTINGS["steps"] / steps
    weight = LOWKEY_SETTINGS["lpips_weight"]
    perceptual_name, perceptual = perceptual_distance()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    gray = _gray(x)
    with torch.no_grad():
        plain = lowkey_features(models, x, smoothed=False)
        clean = plain + plain  # the smoothed views are compared with the plain photo's features too
        start = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device) * LOWKEY_SETTINGS["start"]
        xa = grayscale_projection((x + start).clamp(0, 1), gray)
    record = _record(steps, record_every)
    iterates = [x.clone()] if 0 in record else []
    for step in range(1, steps + 1):
        xa.requires_grad_(True)
        feats = lowkey_features(models, xa)
        gain = feature_gain(feats, clean) / (len(feats) * feats[0].shape[1])  # a mean over dimensions too
        objective = gain - weight * perceptual(xa, x)
        (grad,) = torch.autograd.grad(objective.sum(), xa)
        with torch.no_grad():
            xa = grayscale_projection((xa + step_size * grad.sign()).clamp(0, 1), gray)
        if step in record:
            iterates.append(xa.detach().clone())
        if step_hook:
            step_hook(step)
    return xa.detach(), iterates, perceptual_name


# Target selection (Fawkes v0.3) -----------------------------------------------------------------

def choose_targets(user_emb: np.ndarray, users: np.ndarray, pool_emb: np.ndarray, pool_labels: np.ndarray,
                   seed: int, farthest: int = TARGET_POOL_FARTHEST) -> dict[int, int]:
    """Per user, a target identity drawn at random among the ``farthest`` public identities.

    A class's distance to a user is the minimum, over the user's photos, of the L2 distance to
    the class centroid. The user's own identity is never a target.
    """
    rng = np.random.default_rng([seed, 1777])
    classes = np.unique(pool_labels)
    centroids = np.stack([pool_emb[pool_labels == c].mean(0) for c in classes])
    targets = {}
    for user in np.unique(users):
        mine = user_emb[users == user]
        dist = np.linalg.norm(mine[:, None, :] - centroids[None], axis=2).min(0)
        candidates = [c for c in classes[np.argsort(-dist)] if c != user][:farthest]
        targets[int(user)] = int(rng.choice(candidates))
    return targets


# The one entry point ----------------------------------------------------------------------------

def _gray(x: torch.Tensor) -> torch.Tensor:
    return is_grayscale(x)


def default_mode(attack: str) -> str:
    return {"fawkes-v0.3": "high", "fawkes-v1.0": "high", "lowkey": "paper"}[attack]


def cloak(canvases: np.ndarray, attack: str, mode: str | None = None, models: tuple[str, ...] | None = None,
          users: np.ndarray | None = None, pool: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0,
          batch_size: int = 8, record_every: int | None = None, cache=None, progress: bool = True,
          device: str | torch.device | None = None, evaluate: tuple[str, ...] = (),
          steps: int | None = None, precision: str | None = None) -> CloakResult:
    """Cloak uint8 canvases (N, H, W, 3) with ``attack`` in ``mode``; every batch is cached.

    ``users`` (N,) identity labels of the photos and ``pool`` (canvases, labels) of public
    identities are needed by Fawkes v0.3 to pick targets. ``evaluate`` adds models to the
    reported feature shift. ``record_every`` keeps the (best) iterate every so many steps.
    ``steps`` shortens the run (``steps_of``: the mode's preset by default). ``precision`` of
    the attack's passes: ``attack_precision(device)`` by default; part of the cache key.
    """
    from .cache import Cache
    if attack not in ATTACKS:
        raise ValueError(f"Unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}")
    mode = mode or default_mode(attack)
    if mode not in modes(attack):
        raise ValueError(f"Unknown mode {mode!r} for {attack}; choose one of {', '.join(modes(attack))}")
    model_names = tuple(models or DEFAULT_MODELS[attack])
    device = torch.device(device or zoo.default_device())
    precision = precision or attack_precision(device)
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    extractors: list = []  # loaded on the first cache miss: cached cloaks need no model

    def loaded() -> list:
        if not extractors:
            extractors.extend(attack_extractor(zoo.load_model(n, device), precision) for n in model_names)
        return extractors
    cache = cache if cache is not None else Cache()
    canvases = np.asarray(canvases)
    steps = steps_of(attack, mode, steps)

    targets_per_image = None
    if attack == "fawkes-v0.3":
        if users is None or pool is None:
            raise ValueError("fawkes-v0.3 needs users= (labels of the photos) and pool= (public canvases, labels)")
        users = np.asarray(users)
        pool_canvases, pool_labels = pool
        pool_by_model = {n: zoo.embeddings(n, pool_canvases, cache, progress=False) for n in model_names}
        user_by_model = {n: zoo.embeddings(n, canvases, cache, progress=False) for n in model_names}
        first = model_names[0]  # targets are chosen in the first model's embedding space
        target_of = choose_targets(user_by_model[first], users, pool_by_model[first], pool_labels, seed)
        targets_per_image = np.array([target_of[int(u)] for u in users])

    outputs, all_iterates, perceptual_name = [], [], ""
    bar = tqdm(total=len(canvases) * steps, desc=f"{attack} ({mode})", disable=not progress, unit="img-step")
    for start in range(0, len(canvases), batch_size):
        chunk = canvases[start:start + batch_size]
        key = [ATTACK_VERSION, *([ATTACK_REVISIONS[attack]] if attack in ATTACK_REVISIONS else []), attack, mode,
               steps, precision, model_names, [zoo.model_info(n).crop for n in model_names], seed + start,
               record_every, chunk, targets_per_image[start:start + batch_size] if targets_per_image is not None else None]

        def compute():
            x = to_tensor(chunk, device)
            hook = lambda step: bar.update(len(chunk))  # noqa: E731
            name = ""
            if attack == "fawkes-v0.3":
                idx = np.arange(start, start + len(chunk))
                target_emb = []
                for n in model_names:
                    pool_n, user_n = pool_by_model[n], user_by_model[n]
                    shift = []
                    for i in idx:
                        t_mean = pool_n[pool[1] == targets_per_image[i]].mean(0)
                        u_mean = user_n[users == users[i]].mean(0)
                        shift.append(user_n[i] + 2 * (t_mean - u_mean))
                    target_emb.append(torch.tensor(np.stack(shift), dtype=torch.float32, device=device))
                out, its = fawkes_v03_batch(x, loaded(), target_emb, mode, seed + start, record_every, hook, steps)
            elif attack == "fawkes-v1.0":
                out, its = fawkes_v10_batch(x, loaded(), mode, seed + start, record_every, hook, steps)
            else:
                out, its, name = lowkey_batch(x, loaded(), seed + start, record_every, hook, steps)
            result = {"cloaked": to_uint8(out), "perceptual": np.array(name)}
            if its:
                result["iterates"] = np.stack([to_uint8(q) for q in its])
            return result

        found = cache.get_or_compute("cloaks", key, compute)
        if bar.n < (start + len(chunk)) * steps:
            bar.update((start + len(chunk)) * steps - bar.n)
        outputs.append(found["cloaked"])
        perceptual_name = str(found["perceptual"])
        if "iterates" in found:
            all_iterates.append(found["iterates"])
    bar.close()
    cloaked = np.concatenate(outputs) if outputs else np.empty_like(canvases)
    cloaked.setflags(write=False)  # keyed on by later cache entries: read-only lets the cache remember its hash
    measured = tuple(dict.fromkeys(model_names + tuple(evaluate)))

    def compute_measures():  # forward passes of every model: cached too, so a cached cloak costs no model time
        d, linf, shift = measure(to_tensor(canvases, device), cloaked, measured)
        return {"dssim": d, "linf": linf, **{f"shift/{k}": v for k, v in shift.items()}}

    found = cache.get_or_compute("cloak-measures", [ATTACK_VERSION, measured, canvases, cloaked], compute_measures)
    d, linf, shift = found["dssim"], found["linf"], {k: found[f"shift/{k}"] for k in measured}
    iterates = np.concatenate(all_iterates, axis=1) if all_iterates else None
    iterate_steps = np.array(sorted(_record(steps, record_every))) if iterates is not None else None
    return CloakResult(attack, mode, model_names, cloaked, d, linf, shift, perceptual_name, targets_per_image,
                       iterates, iterate_steps, precision=precision)


def bare_step_seconds(extractors, x: torch.Tensor, lowkey: bool = False, repeats: int = 3) -> float:
    """Seconds of one bare forward+backward through the extractor calls of one attack step on
    the batch ``x`` (LowKey calls each model on four views). The floor of any cloaking cost."""
    import kornia
    times = []
    for _ in range(repeats + 1):
        xi = x.clone().requires_grad_(True)
        t = time.perf_counter()
        if lowkey:
            smooth = kornia.filters.gaussian_blur2d(xi, (7, 7), (3.0, 3.0))
            variants = [xi, torch.flip(xi, [3]), smooth, torch.flip(smooth, [3])]
            total = sum(m(v).sum() for v in variants for m in extractors)
        else:
            total = sum(m(xi).sum() for m in extractors)
        total.backward()
        times.append(time.perf_counter() - t)
    return min(times[1:])  # the first call warms up


# Cloaking a user's own photos (``explainer cloak``) ---------------------------------------------

@dataclass
class CloakedPhoto:
    """A user's photo, the face that was cloaked, the cloaked full-size photo and what happened."""

    photo: "object"  # explainer.data.Photo
    face: "object"  # explainer.faces.AlignedFace
    cloaked: np.ndarray  # full-size uint8, the same shape as photo.image
    result: CloakResult
    notes: list[str]


def cloak_photo(source, attack: str = "fawkes-v1.0", mode: str | None = None, seed: int = 0, cache=None,
                progress: bool = False, models: tuple[str, ...] | None = None, pool=None,
                face_choice: int = 0) -> CloakedPhoto:
    """Load a photo (path or upload bytes), find its face, cloak it and carry the cloak back to full size.

    ``face_choice`` picks among several faces (0 = the largest). Raises
    ``explainer.data.PhotoError`` with a one-line reason for a bad file or a photo without a face.
    """
    from .data import load_photo
    from .faces import face_in_photo, paste_perturbation
    photo = load_photo(source)
    face, note = face_in_photo(photo.image, face_choice)
    kwargs = {}
    if attack == "fawkes-v0.3":
        if pool is None:  # v0.3 picks its target among other people's photos: the built-in faces
            from .protocol import load_setting
            public = load_setting("orl", "classroom", seed=seed, progress=False, cache=cache)
            pool = (public.canvases, public.labels)
        kwargs = {"users": np.array([-1]), "pool": pool}
    result = cloak(face.canvas[None], attack, mode, models=models, seed=seed, cache=cache, progress=progress, **kwargs)
    notes = photo.notes + ([note] if note else [])
    return CloakedPhoto(photo, face, paste_perturbation(photo.image, face, result.cloaked[0]), result, notes)
