import numpy as np
import pytest

from explainer.cache import Cache, content_hash


def test_roundtrip_and_compute_once(tmp_path):
    cache = Cache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(5), "y": np.ones((2, 2), np.float32)}

    a = cache.get_or_compute("kind", ["k", 1], compute)
    b = cache.get_or_compute("kind", ["k", 1], compute)
    assert len(calls) == 1
    assert np.array_equal(a["x"], b["x"]) and b["y"].dtype == np.float32
    cache.get_or_compute("kind", ["k", 2], compute)
    assert len(calls) == 2  # other inputs, other key


def test_key_depends_on_array_content():
    a = np.zeros((3, 3), np.uint8)
    b = a.copy()
    assert content_hash(a) == content_hash(b)
    b[1, 1] = 1
    assert content_hash(a) != content_hash(b)
    assert content_hash(a) != content_hash(a.astype(np.float32))
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})


@pytest.mark.parametrize("damage", [
    lambda raw: raw[: len(raw) // 2],  # truncated
    lambda raw: raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:],  # one flipped byte
    lambda raw: b"",  # empty
])
def test_corrupt_entry_is_recomputed_never_loaded(tmp_path, damage):
    cache = Cache(tmp_path)
    cache.get_or_compute("kind", "key", lambda: {"x": np.arange(100)})
    (path,) = list((tmp_path / "kind").glob("*.npz"))
    path.write_bytes(damage(path.read_bytes()))
    calls = []
    out = cache.get_or_compute("kind", "key", lambda: calls.append(1) or {"x": np.arange(100) * 2})
    assert calls == [1]
    assert np.array_equal(out["x"], np.arange(100) * 2)
    assert np.array_equal(Cache(tmp_path).get_or_compute("kind", "key", lambda: {"x": np.zeros(1)})["x"],
                          np.arange(100) * 2)


def test_writes_leave_no_temporary_files(tmp_path):
    cache = Cache(tmp_path)
    cache.save("kind", "k", {"x": np.arange(3)})
    assert [p.name for p in (tmp_path / "kind").iterdir()] == ["k.npz"]


def test_failed_compute_writes_nothing(tmp_path):
    cache = Cache(tmp_path)
    with pytest.raises(RuntimeError):
        cache.get_or_compute("kind", "k", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert not (tmp_path / "kind").exists() or not list((tmp_path / "kind").iterdir())


def test_env_sets_the_root(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "c"))
    assert Cache().root == tmp_path / "c"


def test_large_arrays_hash_by_content_and_only_read_only_ones_are_remembered():
    from explainer import cache as cache_module
    big = np.arange(1 << 15, dtype=np.float32)  # 128 KiB: hashed as its own digest
    frozen = big.copy()
    frozen.setflags(write=False)
    assert content_hash(big) == content_hash(frozen) == content_hash(big[::-1][::-1])
    assert id(frozen) in cache_module._digests and id(big) not in cache_module._digests
    before = content_hash(big)
    big[0] += 1  # a writeable array is rehashed every time: its change shows in the key
    assert content_hash(big) != before
    view = frozen[:]  # a read-only view is remembered too, a view of a writeable array is not
    content_hash(view), content_hash(big[:10000])
    assert id(view) in cache_module._digests
    read_only_view = big[:]
    read_only_view.setflags(write=False)  # its base can still change under it
    assert not cache_module._frozen(read_only_view)
    key = id(frozen)
    del frozen, view
    assert key not in cache_module._digests  # forgotten with the array
