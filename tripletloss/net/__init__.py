"""YAML layer lists -> nn.Module and optimizer param groups (see docs/prototxt_like.md)."""
from tripletloss.net.builder import Net, build_net
from tripletloss.net.spec import load_spec

__all__ = ["Net", "build_net", "load_spec"]
