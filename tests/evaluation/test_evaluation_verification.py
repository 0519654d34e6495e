"""Pairs file -> images -> embeddings -> metrics, with a stand-in embedder (the CLI test uses a real model)."""
import cv2
import numpy as np
import pytest

from tests.helpers.evaluation import IdentityEmbedder
from tripletloss.errors import UserError
from tripletloss.evaluation.protocol import count_missing_as_wrong
from tripletloss.evaluation.verification import JSON_KEYS, evaluate_pairs, resolve_pairs, verify

PAIRS = """2\t2
a\t1\t2
b\t1\t3
a\t1\tb\t2
a\t3\tb\t3
c\t1\t2
d\t2\t3
c\t1\td\t1
c\t3\td\t2
"""


@pytest.fixture
def tiny_dataset(tmp_path):
    """Four identities a..d with three small PNGs each (name/name_000i.png) and a 2-fold pairs file."""
    rng = np.random.default_rng(0)
    for name in "abcd":
        (tmp_path / name).mkdir()
        for i in range(1, 4):
            cv2.imwrite(str(tmp_path / name / f"{name}_{i:04d}.png"), rng.integers(0, 255, (8, 8, 3), np.uint8))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(PAIRS)
    return tmp_path, pairs


def test_fold_layout_and_paths_follow_the_pairs_file(tiny_dataset):
    root, pairs = tiny_dataset
    paths1, paths2, issame, folds, skipped = resolve_pairs(root, pairs)
    assert list(folds) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert list(issame) == [True, True, False, False] * 2
    assert paths1[1] == root / "b" / "b_0001.png" and paths2[1] == root / "b" / "b_0003.png"
    assert paths1[6] == root / "c" / "c_0001.png" and paths2[6] == root / "d" / "d_0001.png"


def test_evaluate_pairs_embeds_each_distinct_image_once(tiny_dataset):
    root, pairs = tiny_dataset
    embedder = IdentityEmbedder("abcd")
    metrics = evaluate_pairs(embedder, root, pairs)
    assert set(JSON_KEYS) <= set(metrics)
    assert metrics["accuracy"] == 1.0 and metrics["auc"] == 1.0 and metrics["eer"] == 0.0
    (embedded,) = embedder.calls
    assert len(embedded) == len(set(embedded)) == 12               # 16 pair slots, 12 distinct images


def test_embeddings_that_ignore_identity_score_at_chance(tiny_dataset):
    root, pairs = tiny_dataset
    metrics = evaluate_pairs(IdentityEmbedder("abcd", noise=100.0, seed=3), root, pairs)
    assert metrics["accuracy"] < 1.0 and metrics["auc"] < 1.0


def test_missing_image_names_the_pairs_line_and_path(tiny_dataset):
    root, pairs = tiny_dataset
    pairs.write_text(PAIRS.replace("d\t2\t3", "d\t2\t7"))
    with pytest.raises(UserError, match=r"pairs.txt line 7: .*[/\\]d has no image d_0007"):
        resolve_pairs(root, pairs)
    paths1, _, _, _, skipped = resolve_pairs(root, pairs, skip_missing=True)
    assert skipped == 1 and len(paths1) == 7
    pairs.write_text(PAIRS.replace("c\t3\td\t2", "c\t3\tzed\t2"))
    with pytest.raises(UserError, match=r"pairs.txt line 9: no identity folder .*zed"):
        resolve_pairs(root, pairs)
    with pytest.raises(UserError, match="not found"):
        resolve_pairs(root, root / "nope.txt")


def test_celeba_validation_pairs_resolve(celeba_dir):
    paths1, paths2, issame, folds, _ = resolve_pairs(celeba_dir, celeba_dir / "splits" / "pairs_val.txt")
    assert len(paths1) == 2000 and issame.sum() == 1000
    assert np.bincount(folds).tolist() == [200] * 10
    assert all(p.is_file() for p in paths1 + paths2)


def test_missing_images_count_as_wrong_in_accuracy_only(tiny_dataset):
    root, pairs = tiny_dataset
    (root / "d" / "d_0003.png").unlink()                           # fold 1 loses "d 2 3": 3 of its 4 pairs remain
    embedder = IdentityEmbedder("abcd")
    skip = verify(embedder, root, pairs, missing="skip")[0]
    wrong = verify(embedder, root, pairs, missing="wrong")[0]
    assert skip["accuracy"] == 1.0 and skip["skipped_pairs"] == 1
    assert wrong["fold_accuracies"] == {0: 1.0, 1: 0.75} and wrong["accuracy"] == 0.875
    assert wrong["accuracy_std"] == 0.125 and wrong["skipped_pairs"] == 1 and wrong["missing"] == "wrong"
    assert {k: wrong[k] for k in ("auc", "eer", "val", "pairs")} == {k: skip[k] for k in ("auc", "eer", "val", "pairs")}
    with pytest.raises(UserError, match="line 7"):
        verify(embedder, root, pairs)


def test_a_fold_without_any_pair_left_scores_zero():
    metrics = {"accuracy": 1.0, "accuracy_std": 0.0, "fold_accuracies": {0: 1.0, 1: 0.5}}
    out = count_missing_as_wrong(metrics, folds=[0, 0, 1, 1], all_folds=[0, 0, 0, 0, 1, 1, 2, 2])
    assert out["fold_accuracies"] == {0: 0.5, 1: 0.5, 2: 0.0} and out["accuracy"] == 1 / 3
