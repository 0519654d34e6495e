"""Checkpoint loading refuses non-finite weights in the averaged model and in the live (trained) model alike."""
import pytest
import torch

from tripletloss.engine.checkpoint import FORMAT, load_checkpoint
from tripletloss.errors import CheckpointError

PREPROCESS = {"size": 8, "resize": 8, "mean": [0.0], "std": [1.0]}


@pytest.mark.parametrize("broken", ["model", "live_model"])
def test_nan_in_either_set_of_weights_is_refused_naming_file_and_tensor(tmp_path, broken):
    weights = {"fc.weight": torch.ones(2, 2)}
    ckpt = {"format": FORMAT, "stage": "softmax", "model": dict(weights), "live_model": dict(weights),
            "preprocess": PREPROCESS}
    path = tmp_path / "fine.pt"
    torch.save(ckpt, path)
    assert load_checkpoint(path)["live_model"]["fc.weight"].sum() == 4
    ckpt[broken] = {"fc.weight": torch.tensor([[1.0, float("nan")], [1.0, 1.0]])}
    torch.save(ckpt, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=r"nan\.pt: refused: non-finite weights \(fc\.weight: 1 of 4"):
        load_checkpoint(tmp_path / "nan.pt")
