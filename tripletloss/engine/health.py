"""Training-health warnings for triplet training: collapse, a loss stuck at the margin, no triplets at all.

The loop feeds each logged step's stats (active fraction, mean d_ap and d_an, triplet count). A condition that
holds for `intervals` logged steps in a row is reported once, with its likely cause and the setting to change.
Distances are compared with the margin, so the test does not depend on the embedding's scale.
"""

#: A distance below this fraction of the margin counts as "zero" (embeddings on one point, or no separation).
NEAR = 0.05

MESSAGES = {
    "collapse": "embeddings have collapsed (anchor-negative distance {d_an:.3g} < {near} x margin for {n} logged "
                "steps: every face maps near one point); lower the learning rate (triplet_lr) or use "
                "selection=semihard and restart from a checkpoint before the collapse, or, if it starts collapsed, "
                "train the backbone longer (its features barely differ)",
    "stuck": "loss stuck at the margin (d_an - d_ap = {gap:.3g} with {active:.0%} of triplets active for {n} logged "
             "steps): the net does not separate the mined triplets; lower triplet_lr or use an easier selection "
             "(semihard instead of batch_hard / pinguo)",
    "no_triplets": "no triplets mined for {n} logged steps (semihard finds none once all distances are equal: a "
                   "collapse); lower triplet_lr or use selection=violating",
}


class HealthMonitor:
    """Counts consecutive logged steps showing each problem; `check(stats)` returns the warnings now due."""

    def __init__(self, margin, intervals):
        self.margin, self.intervals = margin, intervals
        self.streak = dict.fromkeys(MESSAGES, 0)
        self.warned = set()

    def problems(self, stats):
        """The problems (keys of MESSAGES) a step's stats show; none for stats without triplet distances."""
        if "d_an" not in stats:
            return set()
        if stats["triplets"] == 0:
            return {"no_triplets"}
        near = NEAR * self.margin
        if stats["d_an"] < near:
            return {"collapse"}
        return {"stuck"} if abs(stats["d_an"] - stats["d_ap"]) < near and stats["active"] >= 0.9 else set()

    def check(self, stats):
        """Update the streaks with one logged step's `stats`; return [(problem, message)] reaching the limit now."""
        if not self.intervals:
            return []
        found = self.problems(stats)
        due = []
        for problem in MESSAGES:
            self.streak[problem] = self.streak[problem] + 1 if problem in found else 0
            if self.streak[problem] >= self.intervals and problem not in self.warned:
                self.warned.add(problem)
                gap = stats.get("d_an", 0) - stats.get("d_ap", 0)
                due.append((problem, MESSAGES[problem].format(n=self.intervals, near=NEAR, gap=gap, **stats)))
        return due
