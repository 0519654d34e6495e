"""Stage 2 on cached backbone features gives the same model as stage 2 on images."""
import torch

from tests.helpers.tiny import run_stage, tiny_overrides
from tripletloss.engine.checkpoint import load_checkpoint


def test_cached_features_equal_uncached_path(tmp_path, orl_dir):
    # fp32: with bf16 autocast the image path's backbone would differ from the (always fp32) cached features
    overrides = tiny_overrides(tmp_path) + ["resize_size=32", "batches_per_epoch=6", "precision=fp32"]
    run_stage("softmax", orl_dir, overrides, epochs=1)
    models = []
    for cache in ("true", "false"):
        _, run_dir = run_stage("triplet", orl_dir, overrides + [f"cache_features={cache}"], epochs=2)
        models.append(load_checkpoint(run_dir / "model.pt")["model"])
    cached, uncached = models
    assert set(cached) == set(uncached)
    for key in cached:
        assert torch.allclose(cached[key], uncached[key], atol=1e-5), key
    first = load_checkpoint(next(tmp_path.glob("runs/softmax-*/model.pt")))["model"]
    assert not torch.allclose(first["fc8.weight"][:1], first["fc8.weight"][1:2])  # a real, trained backbone
