"""The two training stages, each a Job for the shared loop: softmax pretraining and triplet training."""
