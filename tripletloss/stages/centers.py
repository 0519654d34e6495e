"""facenet's class centres for the center loss: one row per class, updated after every optimizer step."""
from tripletloss.engine.distributed import gather_batch
from tripletloss.losses import center_loss, center_update


class Centers:
    """The (classes, D) centres, created as zeros on first use (D: the features' width).

    `loss(features, labels)` gives the batch's center loss and prepares the update; `commit()` applies it (the
    loop calls it after the optimizer step, so a skipped non-finite step leaves the centres alone). Under several
    processes every rank applies the update of the whole global batch, so the centres stay equal on all ranks.
    """

    def __init__(self, num_classes, alpha):
        self.num_classes, self.alpha = num_classes, alpha
        self.value, self.pending = None, None

    def loss(self, features, labels):
        """Return the center loss of `features` (B, D) against the current centres of `labels` (B,)."""
        if self.value is None:
            self.value = features.new_zeros(self.num_classes, features.shape[1])
        every_feature, every_label = gather_batch(features.detach(), labels)
        self.pending = center_update(every_feature, every_label, self.value, self.alpha)
        return center_loss(features, labels, self.value)

    def commit(self):
        """Apply the update prepared by the last `loss` call, if any."""
        if self.pending is not None:
            self.value, self.pending = self.pending, None

    def state(self):
        """{"centers": CPU tensor} for a checkpoint ({} before the first step)."""
        return {} if self.value is None else {"centers": self.value.cpu()}

    def load(self, state, device):
        """Restore the centres from a dict made by `state()`."""
        if "centers" in state:
            self.value = state["centers"].to(device)
