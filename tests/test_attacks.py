"""The cloaking attacks: budgets, bounds, progress of the objective, seeding, 8-bit outputs."""
import numpy as np
import pytest
import torch

from explainer import attacks, faces, models, protocol, tensors
from explainer.cache import Cache


@pytest.fixture(scope="module")
def setting():
    return protocol.load_setting("orl", "ci", seed=0, progress=False)


@pytest.fixture(scope="module")
def colour_faces():
    """Two real colour faces (LFW when present; else ORL tinted, so channels differ)."""
    from tests.conftest import LFW
    from explainer import data
    if LFW.is_dir():
        fs = data.load_faces(LFW, max_identities=1, max_images=2)
        return faces.align_images(fs.images, "lfw-deepfunneled", progress=False)[0]
    fs = data.load_faces("orl", max_identities=1, max_images=2)
    canv = faces.align_images(fs.images, "orl", progress=False)[0].astype(float)
    return (canv * np.array([1.0, 0.85, 0.7])).astype(np.uint8)


@pytest.fixture(scope="module")
def v10(colour_faces, tmp_path_factory):
    cache = Cache(tmp_path_factory.mktemp("c"))
    return attacks.cloak(colour_faces, "fawkes-v1.0", "low", cache=cache, progress=False, record_every=10,
                         seed=3, device="cpu")


def test_v10_keeps_dssim_budget_and_bound(v10):
    rho = attacks.FAWKES_V10_MODES["low"][0]
    assert v10.cloaked.dtype == np.uint8
    assert np.all(v10.dssim <= rho * 1.0001) and np.all(v10.dssim >= 0.5 * rho)  # checked on the 8-bit image
    assert np.all(v10.linf <= 15 / 255 + 1e-6)  # the +-15/255 bound holds on the saved 8-bit image
    assert np.all(v10.linf > 0)


def test_feature_shift_grows_over_the_steps(v10, colour_faces):
    assert v10.iterates.shape[0] == len(v10.iterate_steps) and v10.iterate_steps[0] == 0
    model = models.load_model("facenet-keras", "cpu")
    clean = model.embed(colour_faces)
    shifts = [float((model.embed(it) - clean).norm(dim=1).mean()) for it in v10.iterates]
    assert shifts[0] == pytest.approx(0, abs=1e-5)
    assert shifts[-1] > shifts[1] > 0
    assert np.all(np.diff(shifts) >= -0.05)  # (the best iterate kept) moves away, not back
    assert v10.shift["facenet-keras"].min() > 0.5


def test_cached_cloaks_can_be_read_without_their_iterates(colour_faces, tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    args = dict(cache=cache, progress=False, record_every=1, seed=3, device="cpu", steps=2)
    first = attacks.cloak(colour_faces[:1], "fawkes-v1.0", "low", **args)
    monkeypatch.setattr(attacks.get("fawkes-v1.0"), "run_batch", lambda *a: pytest.fail("cloaked again"))
    bare = attacks.cloak(colour_faces[:1], "fawkes-v1.0", "low", load_iterates=False, **args)
    assert bare.iterates is None and bare.iterate_steps is None
    assert np.array_equal(bare.cloaked, first.cloaked) and np.array_equal(bare.dssim, first.dssim)
    full = attacks.cloak(colour_faces[:1], "fawkes-v1.0", "low", **args)
    assert full.iterates.shape == (3, 1, *colour_faces.shape[1:]) and np.array_equal(full.iterates, first.iterates)


def test_same_seed_same_cloak(colour_faces, v10, tmp_path):
    again = attacks.cloak(colour_faces, "fawkes-v1.0", "low", cache=Cache(tmp_path), progress=False,
                          record_every=10, seed=3, device="cpu")
    assert np.array_equal(again.cloaked, v10.cloaked)


def test_quantised_before_evaluation(v10, colour_faces):
    """Reported numbers are those of the saved 8-bit images, recomputed here from them."""
    x = tensors.to_tensor(colour_faces)
    d, linf, shift = attacks.measure(x, v10.cloaked, ("facenet-keras",))
    assert np.allclose(d, v10.dssim) and np.allclose(linf, v10.linf)
    assert np.allclose(shift["facenet-keras"], v10.shift["facenet-keras"], atol=1e-6)
    assert np.allclose(v10.linf * 255, np.round(v10.linf * 255), atol=1e-4)  # whole 8-bit steps


def test_v03_moves_toward_target_within_budget(setting, tmp_path):
    labels = setting.labels
    user = setting.split.protected[0]
    idx = np.flatnonzero(labels == user)[:2]
    pool = np.flatnonzero(labels != user)
    result = attacks.cloak(setting.canvases[idx], "fawkes-v0.3", "min", users=labels[idx],
                           pool=(setting.canvases[pool], labels[pool]), cache=Cache(tmp_path), progress=False,
                           device="cpu")
    rho = attacks.FAWKES_V03_MODES["min"][0]
    assert np.all(result.dssim <= 1.1 * rho)
    assert np.all(result.targets != user)
    model = models.load_model("facenet-keras", "cpu")
    target_centroid = model.embed(setting.canvases[pool][labels[pool] == result.targets[0]]).mean(0)
    before = (model.embed(setting.canvases[idx]) - target_centroid).norm(dim=1)
    after = (model.embed(result.cloaked) - target_centroid).norm(dim=1)
    assert torch.all(after < before)


def test_grayscale_photo_gets_grayscale_cloak(setting, tmp_path):
    x = setting.canvases[:1]  # ORL is grayscale
    assert tensors.is_grayscale(tensors.to_tensor(x)).all()
    # The colour handling is under test, not LowKey's strength: a few steps show it.
    result = attacks.cloak(x, "lowkey", steps=5, cache=Cache(tmp_path), progress=False, device="cpu")
    assert tensors.is_grayscale(tensors.to_tensor(result.cloaked)).all()
    assert result.linf[0] > 0
    assert "substitute" in result.perceptual or result.perceptual == "lpips-alex"


def test_target_choice_is_far_and_seeded():
    rng = np.random.default_rng(0)
    pool_labels = np.repeat(np.arange(30), 3)
    pool_emb = rng.normal(size=(90, 8)) + pool_labels[:, None] * 0.5
    user_emb = np.zeros((4, 8))
    users = np.zeros(4, int)
    a = attacks.choose_targets(user_emb, users, pool_emb, pool_labels, seed=1)
    assert a == attacks.choose_targets(user_emb, users, pool_emb, pool_labels, seed=1)
    assert a[0] >= 10  # among the 20 farthest of 30 classes, never the user's own (0)


def test_unknown_attack_or_mode_is_an_error():
    with pytest.raises(ValueError, match="Unknown attack"):
        attacks.cloak(np.zeros((1, 8, 8, 3), np.uint8), "glaze")
    with pytest.raises(ValueError, match="Unknown mode"):
        attacks.cloak(np.zeros((1, 8, 8, 3), np.uint8), "fawkes-v1.0", "ultra")


def test_fawkes_budget_holds_on_grayscale_8_bit_cloaks(setting, tmp_path):
    """Rounding to 8 bits adds structure in flat grey photos: the budget is checked after it."""
    x = setting.canvases[:3]
    for attack, mode in (("fawkes-v1.0", "low"), ("fawkes-v0.3", "min")):
        kwargs = {}
        if attack == "fawkes-v0.3":
            pool = np.flatnonzero(setting.labels != setting.labels[0])
            kwargs = {"users": setting.labels[:3], "pool": (setting.canvases[pool], setting.labels[pool])}
        result = attacks.cloak(x, attack, mode, models=("dlib-resnet",), cache=Cache(tmp_path), progress=False,
                               device="cpu", **kwargs)
        rho = {"fawkes-v1.0": attacks.FAWKES_V10_MODES, "fawkes-v0.3": attacks.FAWKES_V03_MODES}[attack][mode][0]
        assert np.all(result.dssim <= rho * 1.0001), (attack, result.dssim)
        assert tensors.is_grayscale(tensors.to_tensor(result.cloaked)).all()


def test_an_interrupted_preparation_keeps_every_finished_batch(setting, monkeypatch, tmp_path):
    """Stopping a long cloaking run (Ctrl-C, a closed laptop) loses only the batch in progress."""
    monkeypatch.setitem(attacks.FAWKES_V10_MODES, "low", (0.004, 2, 25))  # resumption is under test, not the attack
    spec = attacks.get("fawkes-v1.0")
    real, calls = spec.run_batch, []

    def flaky(x, *args, **kwargs):
        calls.append(len(x))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(x, *args, **kwargs)

    monkeypatch.setattr(spec, "run_batch", flaky)
    canvases, cache = setting.canvases[:4], Cache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        attacks.cloak(canvases, "fawkes-v1.0", "low", batch_size=2, cache=cache, progress=False)
    calls.clear()
    resumed = attacks.cloak(canvases, "fawkes-v1.0", "low", batch_size=2, cache=cache, progress=False)
    assert calls == [2]  # only the interrupted batch is computed again
    assert resumed.cloaked.shape == canvases.shape


def test_subset_slices_every_per_photo_field():
    n = 4
    result = attacks.CloakResult("fawkes-v0.3", "low", ("m",), np.arange(n * 2).reshape(n, 2), np.arange(n) / 10,
                                 np.arange(n) / 100, {"m": np.arange(n) + 1.0}, targets=np.arange(n) + 7,
                                 iterates=np.arange(3 * n).reshape(3, n), iterate_steps=np.array([0, 5, 10]))
    mine = np.array([False, True, False, True])
    part = result.subset(mine)
    assert part.cloaked.tolist() == [[2, 3], [6, 7]] and part.dssim.tolist() == [0.1, 0.3]
    assert part.linf.tolist() == [0.01, 0.03] and part.shift["m"].tolist() == [2.0, 4.0]
    assert part.targets.tolist() == [8, 10] and part.iterates.shape == (3, 2)
    assert part.iterate_steps.tolist() == [0, 5, 10] and part.mode == "low"


def test_shortened_runs_keep_the_budget_and_lowkey_its_reach(setting, tmp_path):
    assert attacks.steps_of("fawkes-v1.0", "high") == 150 and attacks.steps_of("fawkes-v1.0", "high", 4) == 4
    x = setting.canvases[:2]
    v10 = attacks.cloak(x, "fawkes-v1.0", "high", steps=4, cache=Cache(tmp_path), progress=False, device="cpu")
    assert (v10.dssim <= attacks.FAWKES_V10_MODES["high"][0] + 1e-4).all()
    lowkey = attacks.cloak(x, "lowkey", steps=2, cache=Cache(tmp_path), progress=False, device="cpu")
    reach = attacks.LOWKEY_SETTINGS["step"] * attacks.LOWKEY_SETTINGS["steps"] + attacks.LOWKEY_SETTINGS["start"]
    # two steps of 0.0625 each, where two of the paper's 0.0025 could not pass 0.01
    assert 0.05 < lowkey.linf.max() <= reach + 1 / 255


def test_attack_precision_choice_and_override(monkeypatch):
    monkeypatch.delenv("EXPLAINER_ATTACK_PRECISION", raising=False)
    assert attacks.attack_precision("cpu") == ("bf16" if attacks._cpu_has_native_bf16() else "fp32")
    monkeypatch.setenv("EXPLAINER_ATTACK_PRECISION", "fp32")
    assert attacks.attack_precision("cpu") == "fp32"
    monkeypatch.setenv("EXPLAINER_ATTACK_PRECISION", "fp16")
    with pytest.raises(ValueError, match="EXPLAINER_ATTACK_PRECISION"):
        attacks.attack_precision("cpu")


def test_bf16_attack_passes_cloak_as_well_and_are_cached_apart(setting, tmp_path):
    """The autocast extractor agrees with float32; a bf16 cloak keeps the budget and moves the
    features as far; the two precisions never share a cache entry."""
    x = setting.canvases[:2]
    model = models.load_model("facenet-keras", "cpu")
    t = tensors.to_tensor(x)
    with torch.no_grad():
        cos = torch.nn.functional.cosine_similarity(model(t), attacks.Autocast(model)(t))
    assert attacks.Autocast(model)(t).dtype == torch.float32 and cos.min() > 0.999
    cache = Cache(tmp_path)
    runs = {p: attacks.cloak(x, "fawkes-v1.0", "high", steps=6, cache=cache, progress=False, device="cpu",
                             precision=p) for p in attacks.PRECISIONS}
    assert runs["bf16"].precision == "bf16" and not np.array_equal(runs["bf16"].cloaked, runs["fp32"].cloaked)
    assert (runs["bf16"].dssim <= attacks.FAWKES_V10_MODES["high"][0] + 1e-4).all()
    fp32, bf16 = runs["fp32"].shift["facenet-keras"], runs["bf16"].shift["facenet-keras"]
    assert bf16.min() > 0.5 and abs(bf16.mean() - fp32.mean()) < 0.15 * fp32.mean()
    with pytest.raises(ValueError, match="precision"):
        attacks.cloak(x, "fawkes-v1.0", "high", steps=1, cache=cache, progress=False, precision="fp16")


def test_lowkey_perceptual_term_holds_the_cloak_back(setting, monkeypatch):
    # LowKey's feature term is a mean over embedding dimensions: on that scale its perceptual
    # weight of 0.05 matters (a sum over dimensions would drown it).
    x = tensors.to_tensor(setting.canvases[:2])
    extractors = [models.load_model(n, "cpu") for n in attacks.DEFAULT_MODELS["lowkey"]]
    name, distance = attacks.perceptual_distance()

    def cloak_distance(weight):
        monkeypatch.setitem(attacks.LOWKEY_SETTINGS, "lpips_weight", weight)
        cloaked, _, _ = attacks.lowkey_batch(x, extractors, seed=0, steps=10)
        return distance(cloaked, x).mean().item()
    assert cloak_distance(0.05) < 0.5 * cloak_distance(0.0)  # measured: 0.23 (0.82 with the sum)


def test_progress_bar_only_for_work_the_cache_did_not_hold(setting, monkeypatch, tmp_path, capsys):
    """An exported page shows no "0%| 0/140" bar for cloaks the cache already held."""
    monkeypatch.setitem(attacks.FAWKES_V10_MODES, "low", (0.004, 2, 25))  # the bar is under test, not the attack
    canvases, cache = setting.canvases[:2], Cache(tmp_path)
    attacks.cloak(canvases, "fawkes-v1.0", "low", batch_size=2, cache=cache, progress=True)
    assert "img-step" in capsys.readouterr().err  # computed: a bar
    attacks.cloak(canvases, "fawkes-v1.0", "low", batch_size=2, cache=cache, progress=True)
    assert "img-step" not in capsys.readouterr().err  # held by the cache: none


def test_the_loops_dssim_equals_kornias_to_the_bit_value_and_gradient(setting, colour_faces):
    """``DSSIMTo`` filters the clean photos' moments once and the rest channels-last: it must
    give ``dssim``'s value and gradient exactly, or the cloaks (and their cache keys) would change."""
    gen = torch.Generator().manual_seed(0)
    for canvases in (colour_faces, setting.canvases[:3]):  # colour, and grayscale ORL
        clean = tensors.to_tensor(canvases)
        cloak = (clean + (torch.rand(clean.shape, generator=gen) - 0.5) * 0.06).clamp(0, 1)
        grads = []
        for f in (lambda v: attacks.dssim(v, clean), attacks.DSSIMTo(clean)):
            v = cloak.clone().requires_grad_(True)
            d = f(attacks.straight_through_quantise(v))
            (1e3 * d ** 2 + d).sum().backward()
            grads.append((d.detach(), v.grad))
        (d_kornia, g_kornia), (d_ours, g_ours) = grads
        assert d_kornia.min() > 0 and g_kornia.abs().max() > 0
        assert torch.equal(d_ours, d_kornia) and torch.equal(g_ours, g_kornia)


def test_the_loops_in_place_steps_give_the_plain_formulas_bits(colour_faces):
    """``straight_through_quantise`` and ``_from_tanh`` compute in place: the value and the
    gradient must be those of the plain formulas, or every cached cloak would silently change."""
    from explainer.attacks.common import _from_tanh
    w0 = attacks.common._to_tanh(tensors.to_tensor(colour_faces)) + 0.01
    runs = []
    for from_tanh, stq in ((_from_tanh, attacks.straight_through_quantise),
                           (lambda w: (torch.tanh(w) + 1) / 2, lambda x: x + (attacks.quantise(x) - x).detach())):
        w = w0.clone().requires_grad_(True)
        x = from_tanh(w)
        q = stq(x)
        (q ** 3 + x).sum().backward()
        runs.append((x.detach(), q.detach(), w.grad))
    assert (runs[0][1] != runs[0][0]).any()  # the quantisation did something
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_fawkes_cloaks_do_not_change_with_the_loops_dssim(colour_faces, monkeypatch):
    """The same Fawkes v0.3 and v1.0 cloaks, byte for byte, with kornia's SSIM in the loop."""
    x = tensors.to_tensor(colour_faces)
    extractors = [models.load_model("facenet-keras", "cpu")]
    target = [extractors[0](x).detach().roll(1, dims=0)]

    def cloaks():
        return (tensors.to_uint8(attacks.fawkes_v03.fawkes_v03_batch(x, extractors, target, "min", 0, steps=20)[0]),
                tensors.to_uint8(attacks.fawkes_v10.fawkes_v10_batch(x, extractors, "low", 0, steps=20)[0]))
    ours = cloaks()
    for module in (attacks.fawkes_v03, attacks.fawkes_v10):
        monkeypatch.setattr(module, "DSSIMTo", lambda clean: (lambda v: attacks.dssim(v, clean)))
    for a, b in zip(ours, cloaks()):
        assert (a != tensors.to_uint8(x)).any() and np.array_equal(a, b)
