"""Evaluating face embeddings: the LFW verification protocol, plots, clustering views, export, classifiers.

`evaluate_pairs(embedder, data_dir, pairs_path, ...)` returns the metrics of a pairs file as the trainer computes them
(it calls `verification.verify`, which also returns the pair distances it calibrates on).
"""
from tripletloss.evaluation.verification import evaluate_pairs

__all__ = ["evaluate_pairs"]
