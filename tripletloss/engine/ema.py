"""Exponential moving average of the weights (facenet's `moving_average_decay`, tf.train.ExponentialMovingAverage).

After each optimizer step every parameter's shadow moves toward it: shadow += (1 - d) * (param - shadow), with
d = min(decay, (1 + step) / (10 + step)) as TensorFlow does when given the global step. Buffers (BatchNorm
statistics) are not averaged, as in facenet. Frozen parameters keep a shadow equal to themselves exactly.
"""
import contextlib

import torch


class WeightAverage:
    """Shadow copies of `net.layers`' parameters, keyed like its state_dict."""

    def __init__(self, net, decay):
        self.net, self.decay = net, decay
        self.shadow = {k: p.detach().clone() for k, p in net.layers.named_parameters()}

    @torch.no_grad()
    def update(self, step):
        """Move every shadow toward its parameter after optimizer step `step` (0-based)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        for key, param in self.net.layers.named_parameters():
            self.shadow[key].lerp_(param.detach(), 1 - decay)

    def state_dict(self):
        """The weights with averaged parameters: net.layers.state_dict() with each parameter replaced by its shadow."""
        return dict(self.net.layers.state_dict(), **self.shadow)

    def load(self, state):
        """Take the shadows from `state` (a state_dict written by state_dict())."""
        self.shadow = {k: state[k].to(v.device).clone() for k, v in self.shadow.items()}

    @contextlib.contextmanager
    def applied(self):
        """Within the block the net holds the averaged parameters; afterwards its own again, bit for bit."""
        params = dict(self.net.layers.named_parameters())
        saved = {k: p.detach().clone() for k, p in params.items()}
        _copy_into(params, self.shadow)
        try:
            yield
        finally:
            _copy_into(params, saved)


@torch.no_grad()
def _copy_into(params, values):
    for key, param in params.items():
        param.copy_(values[key])
