import numpy as np
import pytest

from explainer import protocol


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


def test_nn1_and_clean_accuracy():
    labels = labels_of([4, 4])
    emb = np.array([[1, 0]] * 4 + [[0, 1]] * 4, float)
    split = protocol.make_split(labels, n_protected=1, seed=0)
    assert protocol.clean_nn1_accuracy(emb, labels, split) == 1.0
    assert protocol.nn1_predict(emb[:1], labels[:1], emb[4:5])[0] == 0


def test_profiles():
    assert protocol.profile_settings("ci")["max_identities"] <= 10
    with pytest.raises(ValueError, match="Unknown profile"):
        protocol.profile_settings("huge")
