"""The training engine: run directories, checkpoints, RNG state, logging, LR schedules and the loop itself."""
