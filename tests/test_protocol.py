import numpy as np
import pytest

from explainer import protocol
from explainer.profiles import resolve


def labels_of(counts):
    return np.concatenate([np.full(n, i) for i, n in enumerate(counts)])


def test_split_is_seeded_and_70_30_per_identity():
    labels = labels_of([10, 20, 7, 30])
    a = protocol.split_identities(labels, 0.7, seed=1)
    b = protocol.split_identities(labels, 0.7, seed=1)
    c = protocol.split_identities(labels, 0.7, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    train, test = a
    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == len(labels)
    for i, n in enumerate([10, 20, 7, 30]):
        assert np.sum(labels[train] == i) == round(0.7 * n)


def test_split_of_one_identity_does_not_depend_on_the_others():
    labels = labels_of([10, 10, 10])
    train, _ = protocol.split_identities(labels, seed=0)
    fewer = labels[labels != 2]
    train2, _ = protocol.split_identities(fewer, seed=0)
    assert np.array_equal(train[labels[train] != 2], train2)


def test_protected_test_photos_never_enter_the_gallery():
    labels = labels_of([10] * 8)
    split = protocol.make_split(labels, n_protected=3, seed=4)
    clean = np.arange(len(labels))[:, None].astype(float)  # "embedding" = photo index
    cloaked = {int(i): np.array([-1.0 - i]) for i in split.protected_train(labels)}
    items, gallery_labels, idx = protocol.gallery(split, labels, clean, cloaked)
    assert set(idx.tolist()) == set(split.train.tolist())
    probes = set(split.test.tolist())
    assert not probes & set(idx.tolist())
    protected_rows = np.isin(gallery_labels, split.protected)
    # every protected user's gallery item is a cloak (negative), never a clean photo
    assert np.all(items[protected_rows] < 0) and np.all(items[~protected_rows] >= 0)


def test_gallery_refuses_a_missing_cloak():
    labels = labels_of([10] * 4)
    split = protocol.make_split(labels, n_protected=1, seed=0)
    clean = np.zeros((len(labels), 2))
    with pytest.raises(ValueError, match="must not enter the gallery"):
        protocol.gallery(split, labels, clean, {})


def test_choose_protected_is_seeded():
    labels = labels_of([5] * 20)
    assert np.array_equal(protocol.choose_protected(labels, 4, 1), protocol.choose_protected(labels, 4, 1))
    with pytest.raises(ValueError):
        protocol.choose_protected(labels, 21)


def test_make_split_protects_more_users_until_enough_test_photos():
    labels = labels_of([10] * 20)  # 3 test photos each, as on ORL
    few = protocol.make_split(labels, n_protected=5, seed=3)
    enough = protocol.make_split(labels, n_protected=5, seed=3, min_protected_test=30)
    assert len(few.protected_test(labels)) == 15
    assert len(enough.protected_test(labels)) >= 30 and len(enough.protected) == 10
    assert set(few.protected) <= set(enough.protected)  # the first five are kept
    assert np.array_equal(enough.train, few.train) and np.array_equal(enough.test, few.test)
    # Already enough, or impossible: nothing added beyond what exists.
    assert np.array_equal(protocol.make_split(labels, 5, seed=3, min_protected_test=15).protected, few.protected)
    assert len(protocol.make_split(labels, 5, seed=3, min_protected_test=10**6).protected) == 20


def test_classroom_profile_rests_on_30_protected_test_photos():
    labels = labels_of([10] * 40)  # ORL's shape
    profile = resolve("classroom")
    split = protocol.make_split(labels, profile.n_protected, seed=0, min_protected_test=profile.min_protected_test_photos)
    assert len(split.protected_test(labels)) >= 30


def test_nn1_and_clean_accuracy():
    labels = labels_of([4, 4])
    emb = np.array([[1, 0]] * 4 + [[0, 1]] * 4, float)
    split = protocol.make_split(labels, n_protected=1, seed=0)
    assert protocol.clean_nn1_accuracy(emb, labels, split) == 1.0
    assert protocol.nn1_predict(emb[:1], labels[:1], emb[4:5])[0] == 0


def test_profiles_resolve_once_frozen_and_known():
    import dataclasses

    from explainer import profiles
    ci = profiles.resolve("ci")
    assert ci.max_identities <= 10 and profiles.resolve(ci) is ci
    assert ci.users.steps_of("lowkey") == 10 and ci.users.steps_of("fawkes-v1.0") is None
    with pytest.raises(ValueError, match="Unknown profile 'huge'; choose one of ci, classroom, full"):
        profiles.resolve("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ci.n_protected = 3
    with pytest.raises(TypeError):
        ci.users.modes["lowkey"] = "other"  # the mappings are read-only too
    knobs = {r["knob"] for r in profiles.resolve("classroom").rows()}
    assert {"protected users", "users' attack modes", "defender: share", "training: robust_lr"} <= knobs


def test_wilson_interval():
    lo, hi = protocol.wilson_interval(0, 10)
    assert lo == 0 and 0.2 < hi < 0.35
    lo, hi = protocol.wilson_interval(10, 10)
    assert hi == 1 and 0.65 < lo < 0.8
    lo, hi = protocol.wilson_interval(5, 10)
    assert lo < 0.5 < hi and hi - lo < 0.6
    assert protocol.wilson_interval(50, 100)[1] - protocol.wilson_interval(50, 100)[0] < hi - lo


def toy(n_ids=6, per=10, seed=0):
    """Well-separated unit embeddings per identity."""
    rng = np.random.default_rng(seed)
    labels = labels_of([per] * n_ids)
    centres = np.eye(n_ids, 16)
    emb = centres[labels] + 0.05 * rng.normal(size=(len(labels), 16))
    return labels, emb / np.linalg.norm(emb, axis=1, keepdims=True)


@pytest.mark.parametrize("classifier", ["1nn", "linear"])
def test_cloaks_that_move_far_protect_and_harmless_ones_do_not(classifier):
    labels, emb = toy()
    split = protocol.make_split(labels, n_protected=2, seed=1)
    idx = split.protected_train(labels)
    # cloaks that land on another identity's centre: the protected users are misidentified
    far = {int(i): emb[labels == (labels[i] + 1) % 6][0] for i in idx}
    result = protocol.evaluate_embeddings(split, labels, emb, far, classifier)
    assert result.protection_rate == 1.0
    assert result.unprotected_error <= 0.25  # only the identities whose centre was taken can suffer
    assert set(result.per_user) == set(split.protected.tolist())
    # cloaks equal to the clean photos: no protection at all
    same = {int(i): emb[i] for i in idx}
    assert protocol.evaluate_embeddings(split, labels, emb, same, classifier).protection_rate == 0.0
    assert protocol.clean_error(split, labels, emb, classifier) == 0.0
    single = protocol.evaluate_one_at_a_time(split, labels, emb, far, classifier)
    assert single.protection_rate == 1.0


def test_score_counts_only_probes():
    labels = labels_of([4, 4, 4])
    split = protocol.make_split(labels, n_protected=1, seed=0)
    truth = labels[split.test]
    wrong = np.where(np.isin(truth, split.protected), (truth + 1) % 3, truth)
    result = protocol.score(split, labels, wrong)
    assert result.protection_rate == 1.0 and result.unprotected_error == 0.0
    lo, hi = result.protection_ci
    assert lo < 1.0 == hi


def test_e2e_classifier_learns_the_gallery_and_recomputes_only_changed_chunks(tmp_path):
    from explainer.cache import Cache
    setting = protocol.load_setting("orl", "ci", seed=0, progress=False)
    split, labels, cache = setting.split, setting.labels, Cache(tmp_path)
    gallery = np.array(setting.canvases[split.train])
    pred = protocol.e2e_predict("dlib-resnet", gallery, labels[split.train], setting.canvases[split.test], epochs=3,
                                cache=cache)
    assert np.mean(pred == labels[split.test]) >= 0.9  # ORL faces: an easy gallery
    chunks = len(list((tmp_path / "trunk-features").iterdir()))
    assert chunks == -(-len(gallery) // 8) + -(-len(split.test) // 8)
    gallery[3] = 255 - gallery[3]  # one changed photo: one new chunk, not a new gallery
    protocol.e2e_predict("dlib-resnet", gallery, labels[split.train], setting.canvases[split.test], epochs=3, cache=cache)
    assert len(list((tmp_path / "trunk-features").iterdir())) == chunks + 1


def test_swap_protected_keeps_the_world_and_brings_in_people_from_outside_it(tmp_path):
    from explainer.cache import Cache
    setting = protocol.load_setting("orl", "ci", seed=0, progress=False, cache=Cache(tmp_path))
    world = protocol.swap_protected(setting, "orl", "ci", seed=0, cache=Cache(tmp_path), progress=False)
    n = len(setting.labels)
    old, new = setting.split, world.split
    assert np.array_equal(world.canvases[:n], setting.canvases) and np.array_equal(world.labels[:n], setting.labels)
    assert len(new.protected) == len(old.protected)
    newcomers = [world.names[i] for i in new.protected]
    assert not set(newcomers) & set(setting.names)  # nobody the setting holds
    assert set(world.labels[n:]) == set(new.protected.tolist())
    for part in (new.train, new.test):  # the old protected users have left the split; the public stay as they were
        assert not np.isin(world.labels[part], old.protected).any()
    public = lambda idx: idx[~np.isin(setting.labels[idx], old.protected)]  # noqa: E731
    assert np.array_equal(new.train[new.train < n], public(old.train))
    assert np.array_equal(new.test[new.test < n], public(old.test))
    assert len(new.protected_train(world.labels)) and len(new.protected_test(world.labels))
    everyone = protocol.load_setting("orl", "ci", seed=0, progress=False, max_identities=None, cache=Cache(tmp_path))
    assert protocol.swap_protected(everyone, "orl", "ci", cache=Cache(tmp_path), progress=False) is None
