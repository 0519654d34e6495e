"""Online triplet mining (stage 2): pairwise distances and triplet selection, in torch or in CUDA kernels.

    from tripletloss.mining import pairwise_distances, select_triplets
    a, p, n = select_triplets(embeddings, labels, "semihard", margin=0.2)
"""
from tripletloss.mining.distances import pairwise_distances
from tripletloss.mining.select import ALL_STRATEGIES, BACKENDS, STRATEGIES, select_triplets

__all__ = ["pairwise_distances", "select_triplets", "STRATEGIES", "ALL_STRATEGIES", "BACKENDS"]
