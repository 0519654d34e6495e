"""The torch backend's rejection-sampling path for semihard / violating: every split between the rejection rounds
and the exhaustive scan gives exactly the brute-force pairs, valid negatives, and a uniform choice."""
from unittest import mock

import pytest
import torch

from tests.test_mining import (
    LAYOUTS,
    _case,
    _one_pair_with_five_candidates,
    check_pair_strategy,
)
from tripletloss.mining import select_triplets, torch_backend


@pytest.mark.parametrize("rounds", [0, 1, 3], ids=lambda r: f"rounds{r}")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("strategy", ["semihard", "violating"])
def test_any_number_of_rounds_gives_the_brute_force_pairs(strategy, layout, rounds):
    x, labels = _case(layout, 4, seed=5)
    with mock.patch.object(torch_backend, "REJECTION_ROUNDS", rounds):  # 0: the exhaustive scan does it all
        check_pair_strategy(x, labels, strategy, 0.4, True, tol=1e-9)
        check_pair_strategy(x.float(), labels, strategy, 0.4, False, tol=1e-5)


@pytest.mark.parametrize("rounds", [0, 1], ids=["exhaustive_only", "mixed"])
def test_choice_is_uniform_through_both_paths(rounds):
    x, labels = _one_pair_with_five_candidates()  # five candidates among eight negatives: one draw hits 5/8
    counts = torch.zeros(10)
    with mock.patch.object(torch_backend, "REJECTION_ROUNDS", rounds):
        for s in range(500):
            n = select_triplets(x, labels, "semihard", margin=0.5, generator=torch.Generator().manual_seed(s))[2]
            counts[n] += 1
    assert counts[[0, 1, 7, 8, 9]].sum() == 0
    chi2 = ((counts[2:7] - 100) ** 2 / 100).sum().item()
    assert chi2 < 18.5  # p = 0.001 for 4 degrees of freedom
