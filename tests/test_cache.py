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


def test_any_damaged_byte_loads_the_original_arrays_or_nothing(tmp_path):
    """Flip bytes all over an entry (headers, array data, the zip directory): each load gives back
    exactly what was stored, or nothing, never other arrays."""
    cache = Cache(tmp_path)
    stored = {"x": np.arange(300, dtype=np.int64).reshape(3, 100), "y": np.linspace(0, 1, 50)}
    path = cache.save("kind", "k", stored)
    raw = path.read_bytes()
    caught = 0
    for offset in range(0, len(raw), 7):
        path.write_bytes(raw[:offset] + bytes([raw[offset] ^ 0x5A]) + raw[offset + 1:])
        out = cache.load("kind", "k")
        if out is None:
            caught += 1
            assert not path.exists()  # a corrupt entry is removed
        else:
            assert out.keys() == stored.keys() and all(np.array_equal(out[k], stored[k]) for k in stored)
            assert all(out[k].dtype == stored[k].dtype and out[k].shape == stored[k].shape for k in stored)
    assert caught > len(raw) // 7 * 0.8  # most bytes matter: array data, its header, the directory


def test_members_reads_only_the_arrays_asked_for(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    arrays = {"cloaked": np.ones((2, 3), np.uint8), "iterates": np.zeros((4, 2, 3), np.uint8)}
    first = cache.get_or_compute("kind", "k", lambda: arrays, members=("cloaked",))
    assert first.keys() == arrays.keys()  # just computed: everything
    import zipfile
    read = []
    real_read = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, name, *a: read.append(name) or real_read(self, name, *a))
    again = cache.get_or_compute("kind", "k", lambda: pytest.fail("recomputed"), members=("cloaked",))
    assert list(again) == ["cloaked"] and read == ["cloaked.npy"]
    assert np.array_equal(again["cloaked"], arrays["cloaked"])


def test_entries_written_with_a_checksum_after_the_archive_still_load(tmp_path):
    import hashlib
    cache = Cache(tmp_path)
    path = cache.save("kind", "k", {"x": np.arange(10)})
    payload = path.read_bytes()
    path.write_bytes(payload + hashlib.sha256(payload).hexdigest().encode("ascii"))
    assert np.array_equal(cache.load("kind", "k")["x"], np.arange(10))


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


PREPARE = r"""
import sys, time
import numpy as np
from explainer.cache import Cache
root, log, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
cache = Cache(root)

def compute(i):
    with open(log, "a") as f:
        f.write(f"{i}\n")
    time.sleep(pause)
    return {"x": np.random.default_rng(i).normal(size=(1000, 1000))}  # 8 MB: writing takes a while

out = [float(cache.get_or_compute("prep", ["entry", i], lambda i=i: compute(i))["x"].sum()) for i in range(n)]
print(" ".join(f"{v:.6f}" for v in out))
"""


def _prepare(tmp_path, n, pause=0.0):
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-c", PREPARE, str(tmp_path / "cache"), str(tmp_path / "log"), str(n),
                             str(pause)], stdout=subprocess.PIPE, text=True)


def test_a_killed_preparation_resumes_from_its_finished_entries(tmp_path):
    """SIGKILL in the middle of a preparation (while it writes entries), then a second run: it
    reuses every finished entry, recomputes the rest, and never loads a half-written one."""
    import signal
    import time
    n = 8
    proc = _prepare(tmp_path, n)
    folder = tmp_path / "cache" / "prep"
    deadline = time.time() + 120
    entries = lambda: [p for p in folder.glob("*.npz") if not p.name.startswith(".tmp-")]  # noqa: E731
    while time.time() < deadline and len(entries()) < 3:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(entries())
    assert 3 <= finished < n  # killed half-way
    (tmp_path / "log").write_text("")
    again = _prepare(tmp_path, n)
    values = again.communicate(timeout=300)[0].split()
    assert again.returncode == 0 and len(values) == n
    recomputed = (tmp_path / "log").read_text().split()
    assert len(recomputed) == n - finished  # the finished entries were reused
    expected = [np.random.default_rng(i).normal(size=(1000, 1000)).sum() for i in range(n)]
    assert np.allclose([float(v) for v in values], expected)
    cache = Cache(tmp_path / "cache")
    assert len(entries()) == n and all(cache.load("prep", p.stem) is not None for p in entries())


def test_two_processes_preparing_the_same_entries_both_finish_alike(tmp_path):
    """A teacher opens two notebooks at once: both compute the same entries; each finishes with
    the same results, no error, and every entry on disk is whole."""
    first, second = _prepare(tmp_path, 5, pause=0.05), _prepare(tmp_path, 5, pause=0.05)
    out1, out2 = first.communicate(timeout=300)[0], second.communicate(timeout=300)[0]
    assert first.returncode == 0 and second.returncode == 0
    assert out1 == out2 and len(out1.split()) == 5
    cache = Cache(tmp_path / "cache")
    entries = list((tmp_path / "cache" / "prep").glob("*.npz"))
    assert len(entries) == 5 and all(cache.load("prep", p.stem) is not None for p in entries)
    assert not list((tmp_path / "cache" / "prep").glob(".tmp-*"))


def test_loaded_arrays_are_read_only_and_keys_on_them_reuse_their_hash(tmp_path):
    from explainer import cache as cache_module
    from explainer.cache import frozen
    cache = Cache(tmp_path)
    cache.save("kind", "k", {"x": np.arange(1 << 15, dtype=np.float32)})
    loaded = cache.load("kind", "k")["x"]
    with pytest.raises(ValueError):
        loaded[0] = 1  # a cached value is shared: nobody changes it in place
    content_hash(loaded)
    assert id(loaded) in cache_module._digests
    writeable = np.arange(1 << 15, dtype=np.float32)
    fixed = frozen(writeable)
    assert fixed is not writeable and not fixed.flags.writeable and np.array_equal(fixed, writeable)
    assert frozen(fixed) is fixed and frozen(loaded) is loaded


def test_a_part_of_an_entry_is_cached_apart_and_read_without_the_whole(tmp_path):
    cache = Cache(tmp_path)
    calls = []
    compute = lambda: calls.append(1) or {"weights": np.zeros(1 << 15), "train_s": np.array(2.5)}  # noqa: E731
    part = cache.get_or_compute_part("model", "model-meta", "k", compute, ("train_s",))
    assert list(part) == ["train_s"] and float(part["train_s"]) == 2.5 and calls == [1]
    cache.clear("model")  # the whole entry gone: the part is still read, nothing recomputed
    again = cache.get_or_compute_part("model", "model-meta", "k", compute, ("train_s",))
    assert float(again["train_s"]) == 2.5 and calls == [1]
