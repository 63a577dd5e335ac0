"""Shared fixtures: an isolated cache per session, the LFW folder when present, a network block."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
LFW = (REPO / ".." / "shared" / "data" / "lfw-deepfunneled-20").resolve()

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """Every test run gets its own cache, so results never depend on an earlier run's files."""
    path = tmp_path_factory.mktemp("explainer-cache")
    old = os.environ.get("EXPLAINER_CACHE")
    os.environ["EXPLAINER_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("EXPLAINER_CACHE", None)
    else:
        os.environ["EXPLAINER_CACHE"] = old


@pytest.fixture
def lfw_path() -> Path:
    if not LFW.is_dir():
        pytest.skip(f"{LFW} is not present")
    return LFW


class NetworkBlocked(OSError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Make every outgoing connection (and DNS lookup) fail at once; record the attempts."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise NetworkBlocked(f"network blocked in this test: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", lambda self, *a, **k: refuse(*a))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, *a, **k: refuse(*a))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture(scope="session")
def ci_notebook(tmp_path_factory, session_cache):
    """Run one notebook under the ci profile into a session folder, once per test run, and return
    that folder: the notebook tests and the browser tests read the same executed notebooks, pages
    and decks. A run that raised is not cached, so every test that needs it sees the failure."""
    from explainer import notebooks
    out = tmp_path_factory.mktemp("ci-notebooks")
    done: dict[str, dict] = {}

    def run(name: str) -> Path:
        stem = next(p.stem for p in notebooks.notebook_paths([name]))
        if stem not in done:
            done[stem] = notebooks.run_notebooks("ci", out=out, only=[stem], progress=False, slides=True)
        assert stem in done[stem]
        return out
    return run
