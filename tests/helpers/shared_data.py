"""Where the real face data is: ../shared/data beside the checkout (tests skip cleanly without it)."""
import os
from pathlib import Path

import pytest

from tripletloss import ROOT

#: ../shared/data beside the checkout, or $TRIPLETLOSS_SHARED_DATA (e.g. for a git worktree elsewhere).
SHARED_DATA = Path(os.environ.get("TRIPLETLOSS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared(name):
    """Return SHARED_DATA/`name`; skip the calling test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real face data lives in ../shared/data)")
    return path
