"""The optimizer named by the `optimizer` setting, built from torch.optim over the net's param groups.

"sgd" and "adam" are the toolkit's own (SGD with `momentum`; Adam with torch's defaults). The upper-case names are
facenet's (`facenet.train`), with its constants; where TensorFlow's update differs from torch's it says so below.
"""
import torch


def _facenet_rmsprop(groups, settings):
    # TF adds epsilon inside the square root (sqrt(ms + 1.0)) and starts ms at 1.0 (TF 1.x); torch adds it outside
    # (sqrt(ms) + 1.0) and starts at 0. With facenet's large epsilon both damp small gradients; not bit-equal.
    return torch.optim.RMSprop(groups, alpha=0.9, momentum=0.9, eps=1.0)


def _facenet_adagrad(groups, settings):
    # tf.train.AdagradOptimizer's default initial accumulator is 0.1 (torch's is 0).
    return torch.optim.Adagrad(groups, initial_accumulator_value=0.1)


#: The optimizer setting's values, each building its optimizer from (param groups, settings).
BUILDERS = {
    "sgd": lambda groups, s: torch.optim.SGD(groups, momentum=s["momentum"]),
    "adam": lambda groups, s: torch.optim.Adam(groups),
    "ADAGRAD": _facenet_adagrad,
    "ADADELTA": lambda groups, s: torch.optim.Adadelta(groups, rho=0.9, eps=1e-6),
    "RMSPROP": _facenet_rmsprop,
    "MOM": lambda groups, s: torch.optim.SGD(groups, momentum=0.9, nesterov=True),
    "ADAM": lambda groups, s: torch.optim.Adam(groups, betas=(0.9, 0.999), eps=0.1),
}


def make_optimizer(groups, settings):
    """Return the torch optimizer of settings["optimizer"] over param `groups` (dicts with lr and weight_decay)."""
    return BUILDERS[settings["optimizer"]](groups, settings)
