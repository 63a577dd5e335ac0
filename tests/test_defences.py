"""The trainer's defences: public data, robust fine-tuning, validation-based choice, the detector."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from explainer import attacks, defences, models, profiles, protocol
from explainer.tensors import to_tensor


@pytest.fixture(scope="module")
def orl_ci():
    return protocol.load_setting("orl", "ci", seed=0, progress=False)


def test_public_data_never_touches_protected_users(orl_ci):
    public = defences.public_data(orl_ci, per_identity=3, validation_fraction=0.25, seed=0)
    labels, split = orl_ci.labels, orl_ci.split
    assert not np.isin(labels[public.all], split.protected).any()
    assert np.isin(public.all, split.train).all()  # only scraped photos, never probes
    assert not np.intersect1d(public.train_identities, public.validation_identities).size
    assert set(labels[public.validation]) == set(public.validation_identities)
    assert np.bincount(labels[public.train]).max() == 3
    again = defences.public_data(orl_ci, per_identity=3, validation_fraction=0.25, seed=0)
    assert np.array_equal(public.train, again.train)


def test_public_data_takes_a_share_of_each_users_scraped_photos(orl_ci):
    labels = orl_ci.labels
    scraped = np.bincount(labels[orl_ci.split.train])  # ORL ci: 7 scraped photos each
    assert set(scraped[scraped > 0]) == {7}
    for share, cap, expected in ((0.3, 8, 2), (0.5, 8, 3), (1.0, 5, 5), (0.01, 8, 1)):
        public = defences.public_data(orl_ci, per_identity=cap, validation_fraction=0.25, seed=0, share=share)
        counts = np.bincount(labels[public.all])
        assert set(counts[counts > 0]) == {expected}, (share, cap)
    # a smaller share keeps the first photos of a larger one (their cloaks stay cached)
    two = defences.public_data(orl_ci, 8, 0.25, 0, share=0.3)
    three = defences.public_data(orl_ci, 8, 0.25, 0, share=0.5)
    assert np.isin(two.all, three.all).all()


def test_split_at_reassembles_facenet():
    model = models.load_model("facenet-keras", "cpu")
    from explainer.models import facenet
    x = model.preprocess(torch.rand(2, 3, 224, 224))
    full = model.net(x)
    for start in ("conv2d_2b", "repeat_1", "repeat_3", "last_linear"):
        early, late = facenet.split_at(model.net, start)
        assert torch.allclose(torch.nn.functional.normalize(late(early(x)), dim=1), full, atol=1e-5)
        assert all(p.requires_grad for p in late.parameters())
        assert not any(p.requires_grad for p in early.parameters())


def _pairs():
    faces = protocol.load_setting("orl", "ci", seed=0, progress=False)
    clean = faces.canvases[:8]
    rng = np.random.default_rng(0)
    pattern = rng.choice([-24, 24], size=clean.shape[1:])  # one fixed, strong "cloak"
    cloaked = np.clip(clean.astype(int) + pattern, 0, 255).astype(np.uint8)
    return clean, cloaked, faces.labels[:8]


def test_align_recipe_pulls_cloaks_onto_their_clean_photos(tmp_path):
    from explainer.cache import Cache
    clean, cloaked, labels = _pairs()
    cache = Cache(tmp_path)
    robust = defences.train_robust(clean, cloaked, np.arange(8), labels, "align", "repeat_3", epochs=4, lr=1e-3,
                                   batch_size=4, cache=cache, progress=False)
    original = models.load_model("facenet-keras", "cpu")
    target = original.embed(clean)
    gap_before = (original.embed(cloaked) - target).norm(dim=1).mean()
    gap_after = (robust.extractor.embed(cloaked) - target).norm(dim=1).mean()
    assert gap_after < 0.7 * gap_before
    assert robust.losses[-1] < robust.losses[0]
    assert torch.allclose(robust.extractor.embed(clean).norm(dim=1), torch.ones(8), atol=1e-5)
    again = defences.train_robust(clean, cloaked, np.arange(8), labels, "align", "repeat_3", epochs=4, lr=1e-3,
                                  batch_size=4, cache=cache, progress=False)  # from the cache
    assert again.key == robust.key and again.train_s == robust.train_s
    assert torch.allclose(again.extractor.embed(cloaked[:2]), robust.extractor.embed(cloaked[:2]))


def test_watched_photos_are_recorded_every_epoch_without_changing_the_training(tmp_path):
    """Notebook 02's animation: the watched photos' embeddings before training and after each
    epoch, recorded in the same run; the trained model is the one trained without watching."""
    from explainer.cache import Cache
    clean, cloaked, labels = _pairs()
    common = dict(recipe="align", start="repeat_3", epochs=3, lr=1e-3, batch_size=4, precision="fp32", progress=False)
    plain = defences.train_robust(clean, cloaked, np.arange(8), labels, cache=Cache(tmp_path / "a"), **common)
    watched = defences.train_robust(clean, cloaked, np.arange(8), labels, cache=Cache(tmp_path / "b"),
                                    watch=cloaked[:3], **common)
    assert plain.watch_emb is None and watched.key != plain.key  # the watch joins the key only when given
    assert watched.watch_emb.shape == (4, 3, 128)  # before training, then after each of 3 epochs
    original = models.load_model("facenet-keras", "cpu").embed(cloaked[:3]).numpy()
    assert np.allclose(watched.watch_emb[0], original, atol=1e-4)
    final = watched.extractor.embed(cloaked[:3]).numpy()
    assert np.allclose(watched.watch_emb[-1], final, atol=1e-4)
    assert np.allclose(plain.extractor.embed(cloaked[:3]).numpy(), final, atol=1e-5)  # the same training
    assert not np.allclose(watched.watch_emb[1], watched.watch_emb[-1], atol=1e-3)  # and it moves


def test_bf16_training_learns_as_float32_does_under_its_own_key(tmp_path):
    from explainer.cache import Cache
    clean, cloaked, labels = _pairs()
    cache = Cache(tmp_path)
    runs = {p: defences.train_robust(clean, cloaked, np.arange(8), labels, "align", "repeat_3", epochs=4, lr=1e-3,
                                     batch_size=4, precision=p, cache=cache, progress=False) for p in ("fp32", "bf16")}
    assert runs["fp32"].key != runs["bf16"].key  # never served one for the other
    target = models.load_model("facenet-keras", "cpu").embed(clean)
    gaps = {p: (r.extractor.embed(cloaked) - target).norm(dim=1).mean().item() for p, r in runs.items()}
    assert gaps["bf16"] < 1.2 * gaps["fp32"] + 0.05, gaps
    assert np.allclose(runs["bf16"].losses, runs["fp32"].losses, rtol=0.2, atol=0.02)


def test_models_embedded_together_give_each_ones_own_bits_and_cache_entries(tmp_path, monkeypatch):
    """Notebook 02's candidates are scored together, the frozen stages below them run once: the
    embeddings must be those each model gives alone, stored where ``RobustModel.embeddings`` looks."""
    import dataclasses
    from explainer.cache import Cache
    from explainer.defences import robust as robust_module
    clean, cloaked, labels = _pairs()
    trained = [defences.train_robust(clean, cloaked, np.arange(8), labels, recipe, start, epochs=1, batch_size=4,
                                     cache=Cache(tmp_path / "models"), progress=False)
               for recipe, start in (("align", "repeat_3"), ("align", "last_linear"), ("softmax", "last_linear"))]
    canvases = np.concatenate([clean, cloaked, clean[:4]])  # 20 photos: a full batch of 16 and a short one
    alone = [m.embeddings(canvases, Cache(tmp_path / "alone")) for m in trained]
    assert not np.allclose(alone[0], alone[1], atol=1e-3) and not np.allclose(alone[1], alone[2], atol=1e-3)
    joint_cache = Cache(tmp_path / "joint")
    passed = []
    shared = robust_module._through_shared_stages
    monkeypatch.setattr(robust_module, "_through_shared_stages", lambda ms, *a: passed.append(ms) or shared(ms, *a))
    first = defences.embed_jointly(trained[:2], canvases, joint_cache)
    together = defences.embed_jointly(trained, canvases, joint_cache)
    assert [len(ms) for ms in passed] == [2, 1] and passed[1][0] is trained[2]  # only what was missing
    for a, b, c in zip(alone, together, first + [together[2]]):
        assert np.array_equal(a, b) and np.array_equal(b, c)
    def no_weights():
        raise AssertionError("built a model whose embeddings were cached")
    for m, emb in zip(trained, together):  # read back by the model alone, without building it
        assert np.array_equal(dataclasses.replace(m, build=no_weights).embeddings(canvases, joint_cache), emb)
    assert defences.embed_jointly(trained, canvases[:0], joint_cache)[0].shape == (0, 128)
    loads = []  # scored one after the other, the models read the cache once each, not once per model each
    monkeypatch.setattr(joint_cache, "load", lambda *a, load=joint_cache.load: loads.append(a) or load(*a))
    for embed, emb in zip(defences.joint_embedders(trained, joint_cache), together):
        assert np.array_equal(embed(canvases), emb) and np.array_equal(embed(canvases.copy()), emb)
    assert len(loads) == len(trained)


def test_flip_mirrors_pairs_at_random_under_its_own_key_and_leaves_the_plain_run_alone(tmp_path):
    """``train_robust(flip=True)``: a pair and its mirror image are drawn at random at every step,
    both photos and the target mirrored together; without it, the training is the plain one."""
    from explainer.cache import Cache
    from explainer.defences import robust as robust_module
    clean, cloaked, labels = _pairs()
    common = dict(recipe="align", start="last_linear", epochs=3, lr=1e-3, batch_size=4, precision="fp32", progress=False)
    plain = defences.train_robust(clean, cloaked, np.arange(8), labels, cache=Cache(tmp_path / "a"), **common)
    again = defences.train_robust(clean, cloaked, np.arange(8), labels, cache=Cache(tmp_path / "b"), flip=False, **common)
    flipped = defences.train_robust(clean, cloaked, np.arange(8), labels, cache=Cache(tmp_path / "a"), flip=True, **common)
    assert again.key == plain.key and np.array_equal(again.losses, plain.losses)
    assert flipped.key != plain.key and not np.array_equal(flipped.losses, plain.losses)
    # the mirrored clean photo, pulled onto its own (mirrored) target: an embedding the plain model never trained on
    mirrored = np.ascontiguousarray(cloaked[:, :, ::-1])
    target = models.load_model("facenet-keras", "cpu").embed(np.ascontiguousarray(clean[:, :, ::-1]))
    gaps = {n: (m.extractor.embed(mirrored) - target).norm(dim=1).mean().item() for n, m in (("plain", plain), ("flip", flipped))}
    assert gaps["flip"] < gaps["plain"], gaps
    plain_rows, mirror_rows = torch.zeros(64, 2, 3), torch.ones(64, 2, 3)
    merged, same = robust_module._mirrored_at_random(torch.Generator().manual_seed(0), (plain_rows, mirror_rows),
                                                     (plain_rows[:, 0, 0], mirror_rows[:, 0, 0]))
    assert torch.equal(merged[:, 0, 0], same) and 10 < same.sum() < 54  # one draw per row, shared by every pair


def test_softmax_recipe_trains_and_rejects_unknown_recipes(tmp_path):
    from explainer.cache import Cache
    clean, cloaked, labels = _pairs()
    robust = defences.train_robust(clean, cloaked, np.arange(8), labels, "softmax", "last_linear", epochs=2,
                                   batch_size=4, cache=Cache(tmp_path), progress=False)
    assert robust.name == "facenet-keras robust (softmax)"
    assert len(robust.losses) == 2
    with pytest.raises(ValueError, match="recipe"):
        defences.train_robust(clean, cloaked, np.arange(8), labels, "magic", cache=Cache(tmp_path))


def test_validation_scores_and_one_clean_photo():
    # 4 identities x 4 photos; photos 0-2 of each train, 3 test; identity 0 protected, 1 held out.
    labels = np.repeat(np.arange(4), 4)
    emb = np.eye(4)[labels] + 0.01 * np.arange(16)[:, None]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    train, test = np.flatnonzero(np.arange(16) % 4 < 3), np.flatnonzero(np.arange(16) % 4 == 3)
    setting = protocol.Setting(SimpleNamespace(labels=labels), None, protocol.Split(train, test, np.array([0])))
    public = defences.PublicData(np.array([8, 9]), np.array([4, 5]), np.array([2]), np.array([1]))
    fooled = defences.validation_scores(setting, public, emb, emb[[12, 13]])  # cloaks look like identity 3
    assert fooled == {"protection_rate": 1.0, "clean_accuracy": 1.0}
    undone = defences.validation_scores(setting, public, emb, emb[[4, 5]])
    assert undone["protection_rate"] == 0.0
    confused = emb.copy()
    confused[11] = emb[15]  # a probe of training user 2 looks like user 3: counted, not only held-out users'
    assert defences.validation_scores(setting, public, confused, emb[[4, 5]])["clean_accuracy"] == pytest.approx(2 / 3)
    cloaked = {i: emb[12] for i in setting.split.protected_train(labels)}
    assert protocol.evaluate_embeddings(setting.split, labels, emb, cloaked).protection_rate == 1.0
    assert defences.with_clean_photos(setting.split, labels, emb, cloaked).protection_rate == 0.0


def test_select_uses_validation_and_the_accuracy_tolerance():
    cands = [{"validation_protection": 0.1, "validation_clean_accuracy": 0.90},
             {"validation_protection": 0.3, "validation_clean_accuracy": 0.99},
             {"validation_protection": 0.5, "validation_clean_accuracy": 1.00}]
    assert defences.select(cands, before_clean_accuracy=1.0) is cands[1]
    assert defences.select(cands, before_clean_accuracy=0.91) is cands[0]
    assert defences.select(cands[:1], before_clean_accuracy=1.0) is cands[0]  # none within: the most accurate


def test_detection_metrics_and_jpeg():
    m = defences.detection_metrics(np.array([0.1, 0.2, 0.7]), np.array([0.9, 0.8, 0.3, 0.6]))
    assert m["confusion"] == [[2, 1], [1, 3]]
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 4)
    assert 0.5 < m["roc_auc"] < 1
    _, cloaked, _ = _pairs()
    squeezed = defences.jpeg(cloaked[:2], 75)
    assert squeezed.shape == cloaked[:2].shape and squeezed.dtype == np.uint8
    assert 0 < np.abs(squeezed.astype(int) - cloaked[:2]).mean() < 20


def test_detector_learns_an_obvious_cloak(tmp_path):
    from explainer.cache import Cache
    clean, cloaked, _ = _pairs()
    trained = defences.train_detector(clean, cloaked, epochs=4, batch_size=8, cache=Cache(tmp_path), progress=False)
    assert trained.losses[-1] < trained.losses[0]
    scores = trained.detector.scores(np.concatenate([clean, cloaked]))
    assert scores.shape == (16,) and ((0 <= scores) & (scores <= 1)).all()
    assert scores[8:].mean() > scores[:8].mean()
    # its weights read back from the cache stay channels-last (oneDNN's fast convolutions)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in trained.detector.parameters() if p.dim() == 4)
    crops = defences.random_crops(to_tensor(clean[:3]), 64, torch.Generator().manual_seed(0))
    assert crops.shape == (3, 3, 64, 64)


def test_a_cached_detector_builds_its_network_only_for_scores_not_cached(tmp_path, monkeypatch):
    from explainer.cache import Cache
    clean, cloaked, _ = _pairs()
    args = dict(epochs=1, batch_size=8, cache=Cache(tmp_path), progress=False)
    first = defences.train_detector(clean, cloaked, **args).scores(clean)
    built = []
    real_init = defences.Detector.__init__
    monkeypatch.setattr(defences.Detector, "__init__", lambda self, *a, **k: built.append(1) or real_init(self, *a, **k))
    again = defences.train_detector(clean, cloaked, **args)
    assert np.array_equal(again.scores(clean), first) and built == []  # record and scores from the cache
    assert again.scores(cloaked).shape == (8,) and built == [1]  # new photos: the network is built once
    assert again.scores(cloaked[:3]).shape == (3,) and built == [1]


def _toy_protocol():
    """3 identities x 4 photos on orthogonal axes; photos 0-2 train, 3 test; identity 0 protected."""
    labels = np.repeat(np.arange(3), 4)
    emb = np.eye(3)[labels] + 0.05 * np.sin(np.arange(12))[:, None]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    train, test = np.flatnonzero(np.arange(12) % 4 < 3), np.flatnonzero(np.arange(12) % 4 == 3)
    return labels, emb, protocol.Split(train, test, np.array([0]))


def test_threshold_hybrid_uses_the_robust_model_when_the_match_is_far():
    labels, emb, split = _toy_protocol()
    idx = split.protected_train(labels)
    between = (emb[4] + emb[8]) / np.linalg.norm(emb[4] + emb[8])
    fooled = {i: between for i in idx}  # cloaks sit between identities 1 and 2, far from every probe
    views = {"accurate": (emb, fooled), "robust": (emb, {i: emb[i] for i in idx})}
    taus = np.array([0.0, 0.2, 2.0])
    curves = defences.hybrid_curves(split, labels, views, taus)
    assert curves.single["accurate"]["protection_rate"] == 1.0 and curves.single["robust"]["protection_rate"] == 0.0
    assert curves.single["top2"]["protection_rate"] == 0.0
    assert list(curves.protection_rate) == [0.0, 0.0, 1.0]  # a far neighbour hands over to the robust model
    assert list(curves.clean_accuracy) == [1.0, 1.0, 1.0]
    assert defences.choose_tau(curves) == 0.2  # lowest protection at full accuracy, trusting the accurate model most
    labels_, dist = defences.nearest(emb[split.train], labels[split.train], emb[split.test])
    assert np.array_equal(labels_, labels[split.test]) and (dist < 0.01).all()


def test_union_gallery_keeps_every_cloaked_version():
    labels, emb, split = _toy_protocol()
    idx = split.protected_train(labels)
    away = np.tile(emb[4], (len(idx), 1))  # old cloaks: look like identity 1
    home = emb[idx]  # new cloaks undone (e.g. by a newer model)
    assert defences.union_gallery_evaluation(split, labels, emb, idx, away).protection_rate == 1.0
    assert defences.union_gallery_evaluation(split, labels, emb, idx, np.concatenate([away, home])).protection_rate == 0.0


def test_linear_probe_separates_its_training_identities():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32))
    labels = np.repeat(np.arange(4), 10)
    features = centres[labels] + 0.3 * rng.normal(size=(40, 32))
    w = defences.train_probe(features, labels, dim=8, seed=0)
    emb = defences.project(features, w)
    assert emb.shape == (40, 8) and np.allclose(np.linalg.norm(emb, axis=1), 1)
    pred = protocol.nn1_predict(emb[::2], labels[::2], emb[1::2])
    assert np.mean(pred == labels[1::2]) == 1.0
    assert np.array_equal(w, defences.train_probe(features, labels, dim=8, seed=0))


def test_a_cached_probe_is_read_back_without_training(tmp_path, monkeypatch):
    from explainer.cache import Cache
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 5)
    features = rng.normal(size=(15, 16))
    cache = Cache(tmp_path)
    w = defences.train_probe(features, labels, dim=4, seed=0, cache=cache)
    assert np.array_equal(w, defences.train_probe(features, labels, dim=4, seed=0))  # the same map as uncached

    def no_training(*args, **kwargs):
        raise AssertionError("the probe was trained again")
    monkeypatch.setattr(torch.optim, "Adam", no_training)
    assert np.array_equal(w, defences.train_probe(features, labels, dim=4, seed=0, cache=cache))
    with pytest.raises(AssertionError, match="trained again"):  # other inputs: a new entry, trained
        defences.train_probe(features, labels, dim=4, seed=1, cache=cache)


def test_detection_threshold_flags_at_most_the_allowed_share_of_clean_photos():
    clean = np.linspace(0.0, 0.1, 200)
    t = defences.choose_threshold(clean, max_false_positive=0.01)
    assert np.sum(clean >= t) == 2 and clean[-3] < t < clean[-2]  # 1 % of 200: just above the third highest
    assert np.sum(clean[:50] >= defences.choose_threshold(clean[:50])) == 0  # 1 % of 50: none
    subtle = np.array([0.12, 0.3, 0.9])  # cloaks well below the defender's own still count
    own_clean = np.array([0.01, 0.02, 0.05])
    m = defences.detection_metrics(own_clean, subtle, defences.choose_threshold(own_clean))
    assert m["precision"] == m["recall"] == 1.0


def test_cloak_workload_counts_every_cloak_of_a_profile():
    from explainer import experiments
    rows = experiments.cloak_workload("orl", "ci", 0)
    ci = profiles.resolve("ci")
    protected = [r for r in rows if r["role"] == "protected"]
    assert {r["attack"] for r in protected} == set(attacks.ATTACKS)
    assert all(r["photos"] == 7 * ci.n_protected for r in protected)  # 70 % of 10 photos each
    assert {r["steps"] for r in protected if r["attack"] == "lowkey"} == {ci.users.steps["lowkey"]}
    public = [r for r in rows if r["role"] == "public"]
    assert {r["attack"]: r["steps"] for r in public} == dict(ci.defender.steps)
    assert not [r for r in rows if r["role"] == "viewer"]  # ci shows no extra modes
    assert not [r for r in rows if r["role"] == "public-lowkey"]  # nor further LowKey pairs
    setting = protocol.load_setting("orl", "classroom", seed=0, progress=False)
    extra = defences.lowkey_extra_photos(setting, defences.profile_public_data(setting, "classroom", 0), "classroom", 0)
    further = [r for r in experiments.cloak_workload("orl", "classroom", 0) if r["role"] == "public-lowkey"]
    assert len(extra) and [r["photos"] for r in further] == [len(extra)]


def test_lowkey_extra_photos_are_more_scraped_photos_of_the_training_users(orl_ci):
    labels, split = orl_ci.labels, orl_ci.split
    public = defences.public_data(orl_ci, per_identity=2, validation_fraction=0.25, seed=0)
    extra = defences.lowkey_extra_photos(orl_ci, public, "ci", seed=0, share=1.0)
    assert len(extra) and not np.intersect1d(extra, public.all).size
    assert np.isin(extra, split.train).all()  # scraped photos, never probes
    assert set(labels[extra]) == set(public.train_identities)  # no held-out or protected user
    # with the 2 the defender cloaks with every attack, every scraped photo of a training user
    assert len(extra) + len(public.train) == np.isin(labels[split.train], public.train_identities).sum()
    assert len(defences.lowkey_extra_photos(orl_ci, public, "ci", seed=0, share=0.0)) == 0
    half = defences.lowkey_extra_photos(orl_ci, public, "ci", seed=0, share=0.5)
    assert 0 < len(half) < len(extra) and np.isin(half, extra).all()


def test_lowkey_extra_photos_stop_at_the_profiles_cap(orl_ci):
    import dataclasses
    public = defences.public_data(orl_ci, per_identity=2, validation_fraction=0.25, seed=0)
    ci = profiles.resolve("ci")
    capped_profile = dataclasses.replace(ci, defender=dataclasses.replace(ci.defender, lowkey_per_identity=4))
    capped = defences.lowkey_extra_photos(orl_ci, public, capped_profile, seed=0, share=1.0)
    counts = np.bincount(orl_ci.labels[capped])
    assert set(counts[counts > 0]) == {2}  # 4 photos per user in all, 2 of them cloaked by every attack


def test_pair_data_appends_the_extra_pairs_after_every_attacks(orl_ci):
    public = defences.public_data(orl_ci, per_identity=2, validation_fraction=0.25, seed=0)
    n, canvases = len(public.train), orl_ci.canvases
    cloaks = {a: SimpleNamespace(cloaked=255 - canvases[public.all]) for a in ("fawkes-v1.0", "lowkey")}
    extra_idx = defences.lowkey_extra_photos(orl_ci, public, "ci", seed=0, share=1.0)
    clean, labels, cloaked, source = defences.pair_data(orl_ci, public, cloaks, (extra_idx, 255 - canvases[extra_idx]))
    assert len(clean) == len(labels) == n + len(extra_idx) and len(cloaked) == len(source) == 2 * n + len(extra_idx)
    assert np.array_equal(cloaked, 255 - clean[source])  # every cloak sits beside its own clean photo
    assert np.array_equal(labels, orl_ci.labels[np.concatenate([public.train, extra_idx])])
    plain = defences.pair_data(orl_ci, public, cloaks)
    assert len(plain[0]) == n and np.array_equal(plain[3], np.tile(np.arange(n), 2))


def test_refit_trains_on_every_public_user_with_each_cloak_beside_its_own_photo(orl_ci):
    """``PublicData.refit``: the deployed model's data, the held-out users' pairs and further
    LowKey photos joining the training users', never a protected user's or a probe."""
    public = defences.public_data(orl_ci, per_identity=2, validation_fraction=0.25, seed=0)
    everyone = public.refit()
    assert np.array_equal(everyone.train, public.all) and not len(everyone.validation)
    assert set(everyone.train_identities) == set(public.train_identities) | set(public.validation_identities)
    canvases = orl_ci.canvases
    cloaks = {a: SimpleNamespace(cloaked=255 - canvases[public.all]) for a in ("fawkes-v1.0", "lowkey")}
    clean, labels, cloaked, source = defences.pair_data(orl_ci, everyone, cloaks)
    assert np.array_equal(cloaked, 255 - clean[source]) and set(labels) == set(everyone.train_identities)
    extra = defences.lowkey_extra_photos(orl_ci, everyone, "ci", seed=0, share=1.0)
    assert set(orl_ci.labels[extra]) == set(everyone.train_identities)  # held-out users' further photos too
    assert not np.isin(orl_ci.labels[np.concatenate([everyone.all, extra])], orl_ci.split.protected).any()
    assert np.isin(extra, orl_ci.split.train).all()
