"""Data preparation: dlib face alignment, dataset checks, pruning and identity-disjoint splits."""
