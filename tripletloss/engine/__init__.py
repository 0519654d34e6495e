"""The training engine: run directories, checkpoints, RNG state, logging, LR schedules, the device, distributed
training and the loop itself."""
