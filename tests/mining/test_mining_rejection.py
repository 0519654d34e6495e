"""The torch backend's rejection-sampling path for semihard / violating: every split between the rejection rounds
and the exhaustive scan gives exactly the brute-force pairs, valid negatives, and a uniform choice."""
from unittest import mock

import pytest
import torch

from tests.helpers.mining import (
    LAYOUTS,
    assert_uniform,
    case,
    check_pair_strategy,
    one_pair_with_five_candidates,
)
from tripletloss.mining import select_triplets, torch_backend


@pytest.mark.parametrize("rounds", [0, 1, 3], ids=lambda r: f"rounds{r}")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("strategy", ["semihard", "violating"])
def test_any_number_of_rounds_gives_the_brute_force_pairs(strategy, layout, rounds):
    x, labels = case(layout, 4, seed=5)
    with mock.patch.object(torch_backend, "REJECTION_ROUNDS", rounds):  # 0: the exhaustive scan does it all
        check_pair_strategy(x, labels, strategy, 0.4, True, tol=1e-9)
        check_pair_strategy(x.float(), labels, strategy, 0.4, False, tol=1e-5)


@pytest.mark.parametrize("rounds", [0, 1], ids=["exhaustive_only", "mixed"])
def test_choice_is_uniform_through_both_paths(rounds):
    x, labels = one_pair_with_five_candidates()  # five candidates among eight negatives: one draw hits 5/8
    counts = dict.fromkeys(range(2, 7), 0)
    with mock.patch.object(torch_backend, "REJECTION_ROUNDS", rounds):
        for s in range(500):
            n = select_triplets(x, labels, "semihard", margin=0.5, generator=torch.Generator().manual_seed(s))[2]
            counts[n.item()] += 1
    assert_uniform(counts)
