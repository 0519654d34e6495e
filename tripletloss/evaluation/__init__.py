"""Evaluating face embeddings: the LFW verification protocol, plots, clustering views, export, classifiers.

`evaluate_pairs(embedder, data_dir, pairs_path, ...)` is the entry point the trainer calls during training.
"""
from tripletloss.evaluation.verification import evaluate_pairs

__all__ = ["evaluate_pairs"]
