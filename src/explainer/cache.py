"""A content-addressed disk cache for expensive artefacts.

Aligned faces, embeddings, cloaks and trained heads are stored as ``.npz`` files (arrays
only: nothing is unpickled on load) under a key hashed from their inputs, parameters
and code version. Every array is read whole and checked against the CRC-32 the zip format
stores for it; an entry that fails to read or to check (a crash mid-write on a foreign file
system, a truncated copy, a flipped bit) is deleted and recomputed, never loaded. The check
covers only the arrays read, so a caller that needs a few arrays of a large entry reads only those.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
import weakref
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

# Bump when a change to the code alters what a cached artefact would contain.
CODE_VERSION = "1"

Arrays = dict[str, np.ndarray]


def cache_root() -> Path:
    """``$EXPLAINER_CACHE`` or ``~/.cache/explainer``."""
    return Path(os.environ.get("EXPLAINER_CACHE") or Path.home() / ".cache" / "explainer").expanduser()


# Arrays at least this large are fed to a key as their own SHA-256, which is remembered for
# read-only arrays: a notebook keys dozens of cache entries on the same 60-MB canvases.
_DIGEST_BYTES = 1 << 16
_digests: dict[int, tuple[Any, str]] = {}  # id(array) -> (weak reference, digest)


def _frozen(a: np.ndarray) -> bool:
    """Whether ``a`` and every array it views are read-only (so its bytes cannot change)."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return a is None or isinstance(a, bytes)


def frozen(a) -> np.ndarray:
    """``a`` as an array whose bytes cannot change: ``a`` itself when it is one already, else a
    read-only copy. An array keyed on several times is then hashed once."""
    a = np.asarray(a)
    if _frozen(a):
        return a
    a = a.copy()
    a.setflags(write=False)
    return a


def _array_digest(a: np.ndarray) -> str:
    remembered = _digests.get(id(a))
    if remembered is not None and remembered[0]() is a:
        return remembered[1]
    digest = hashlib.sha256(memoryview(np.ascontiguousarray(a)).cast("B")).hexdigest()
    if _frozen(a):
        key = id(a)
        _digests[key] = (weakref.ref(a, lambda _, key=key: _digests.pop(key, None)), digest)
    return digest


def _feed(h: "hashlib._Hash", part: Any) -> None:
    if isinstance(part, np.ndarray):
        h.update(f"nd{part.dtype.str}{part.shape}".encode())
        if part.nbytes >= _DIGEST_BYTES and part.dtype != object:
            h.update(_array_digest(part).encode())
        elif part.size:
            h.update(np.ascontiguousarray(part).tobytes())
    elif hasattr(part, "detach") and hasattr(part, "cpu"):  # a torch tensor
        _feed(h, part.detach().cpu().numpy())
    elif isinstance(part, (list, tuple)):
        h.update(f"seq{len(part)}".encode())
        for p in part:
            _feed(h, p)
    elif isinstance(part, dict):
        h.update(f"map{len(part)}".encode())
        for k in sorted(part, key=str):
            _feed(h, str(k))
            _feed(h, part[k])
    else:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())


def content_hash(*parts: Any) -> str:
    """A stable hex digest of arrays, tensors, numbers, strings and containers of them."""
    h = hashlib.sha256()
    _feed(h, CODE_VERSION)
    for part in parts:
        _feed(h, part)
    return h.hexdigest()[:32]


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``:
    a reader sees the old file or the whole new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """One stored array, read-only, a view of the member's bytes: no copy, and later keys made from it
    reuse its remembered hash. ``ZipFile.read`` checks the member's CRC-32."""
    raw = archive.read(name)
    header = io.BytesIO(raw)
    version = np.lib.format.read_magic(header)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(header)
    if dtype.hasobject:
        raise ValueError("object arrays are never loaded")
    count = int(np.prod(shape, dtype=np.int64))
    if header.tell() + count * dtype.itemsize != len(raw):
        raise ValueError("the array's header does not match its size")
    flat = np.frombuffer(raw, dtype, count=count, offset=header.tell())
    return flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)


def _tiled(archive: zipfile.ZipFile) -> bool:
    """Whether the members listed fill the archive from its start to its directory. zipfile lists
    the members its directory names; one lost to a damaged directory would leave a gap."""
    end = 0
    for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
        archive.fp.seek(info.header_offset)
        header = archive.fp.read(30)
        if info.header_offset != end or len(header) < 30:
            return False
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        end = info.header_offset + 30 + name_length + extra_length + info.compress_size
    return end == archive.start_dir


class Cache:
    """Load-or-compute store of array dictionaries, one ``.npz`` per key.

    >>> cache = Cache("/tmp/c")
    >>> emb = cache.get_or_compute("embeddings", [model_name, faces_hash], lambda: {"x": compute()})
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_root()

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.npz"

    def load(self, kind: str, key: str, members: tuple[str, ...] | None = None) -> Arrays | None:
        """The stored arrays (only those named in ``members``, when given), or ``None`` when absent
        or corrupt (a corrupt entry is removed)."""
        path = self.path(kind, key)
        if not path.exists():
            return None
        try:
            # ZipFile.read checks each array's CRC-32 (np.load's lazy reader stops at the shape the
            # header claims, so a damaged header could go unnoticed); entries written before this
            # check carry a 64-byte SHA-256 after the archive, which zipfile skips
            with zipfile.ZipFile(path) as archive:
                if not _tiled(archive):
                    raise ValueError("the archive's directory does not account for all its members")
                names = [n for n in archive.namelist() if members is None or n.removesuffix(".npy") in members]
                return {n.removesuffix(".npy"): _read_member(archive, n) for n in names}
        except (OSError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, EOFError, NotImplementedError,
                struct.error, KeyError):
            path.unlink(missing_ok=True)
            return None

    def save(self, kind: str, key: str, arrays: Arrays) -> Path:
        """Write atomically: a temporary file in the same folder, then ``os.replace``."""
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        return write_atomic(self.path(kind, key), buf.getvalue())

    def get_or_compute(self, kind: str, key_parts: Any, compute: Callable[[], Arrays],
                       members: tuple[str, ...] | None = None) -> Arrays:
        """Return the cached arrays for ``key_parts``, computing and storing them if needed.
        ``members``: read only these arrays of a cached entry (a computed one returns all)."""
        key = content_hash(kind, key_parts)
        found = self.load(kind, key, members)
        if found is not None:
            return found
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        self.save(kind, key, arrays)
        return arrays

    def get_or_compute_part(self, kind: str, part_kind: str, key_parts: Any, compute: Callable[[], Arrays],
                            names: tuple[str, ...]) -> Arrays:
        """The arrays ``names`` of the ``kind`` entry for ``key_parts`` (computed if needed), cached
        apart under ``part_kind``: a warm run that needs only a model's training record never reads
        its weights."""
        return self.get_or_compute(part_kind, key_parts, lambda: {
            k: v for k, v in self.get_or_compute(kind, key_parts, compute).items() if k in names})

    def clear(self, kind: str | None = None) -> int:
        """Delete entries (all, or one kind); returns how many."""
        base = self.root / kind if kind else self.root
        files = list(base.rglob("*.npz")) if base.exists() else []
        for f in files:
            f.unlink(missing_ok=True)
        return len(files)
