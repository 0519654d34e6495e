"""What training runs on: the training images named by the settings, and the built-in synthetic validation pairs
when nothing else is given."""
import numpy as np

from tripletloss.console import say, warn
from tripletloss.data.folders import read_identity_list, scan_folders
from tripletloss.errors import UserError


def load_training_data(settings):
    """Return (paths, labels, class_names) of the training images named by the settings.

    An empty data_dir means the built-in synthetic faces (generated on first use).
    """
    data_dir = settings["data_dir"]
    if not data_dir:
        from tripletloss.data.synthetic import ensure_default_dataset
        data_dir = str(ensure_default_dataset())
    wanted = read_identity_list(settings["train_identities"]) if settings["train_identities"] else None
    excluded = read_identity_list(settings["exclude_identities"]) if settings["exclude_identities"] else ()
    if wanted is not None:
        check_wanted(wanted, scan_folders(data_dir)[2], settings["train_identities"], data_dir)
    data = scan_folders(data_dir, wanted, excluded, settings["min_images_per_identity"])
    return report_training_data(data, data_dir)


def check_wanted(wanted, present, list_file, data_dir):
    """Warn about names of `list_file` (train_identities) that are not among the identities `present` under
    `data_dir`; raise UserError when none of them is."""
    absent = sorted(set(wanted) - set(present))
    if len(absent) == len(set(wanted)):
        raise UserError(f"train_identities {list_file}: none of its {len(absent)} names is an identity folder with "
                        f"images under {data_dir}")
    if absent:
        warn(f"{len(absent)} names in {list_file} have no images under {data_dir} (first: {', '.join(absent[:5])})")


def report_training_data(data, data_dir):
    """Say what training runs on (identities, images, identities with one image) and return `data`, a
    scan_folders() triple."""
    paths, labels, names = data
    singles = int(np.sum(np.bincount(labels, minlength=len(names)) == 1))
    say(f"training data {data_dir}: {len(names)} identities, {len(paths)} images, {singles} identities with "
        f"one image")
    return data


def synthetic_validation():
    """Settings evaluating on the built-in synthetic validation identities: {lfw_dir, pairs}."""
    from tripletloss.data.synthetic import ensure_default_validation
    val_dir, pairs = ensure_default_validation()
    say(f"Evaluating on the built-in SYNTHETIC validation identities ({pairs})")
    return {"lfw_dir": str(val_dir), "pairs": str(pairs)}
