"""The built-in default runs without any network call."""
import numpy as np

from explainer import models, protocol


def test_default_path_makes_no_network_call(no_network, monkeypatch):
    monkeypatch.delenv("EXPLAINER_DATA", raising=False)
    setting = protocol.load_setting(None, "ci", seed=0, progress=False)
    for name in models.model_names(offline=True):
        emb = models.embeddings(name, setting.canvases[:8], progress=False)
        assert np.isfinite(emb).all()
    assert no_network == []  # not a single connection was attempted
