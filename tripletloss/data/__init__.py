"""Data loading: datasets, the built-in synthetic default and their transforms."""
