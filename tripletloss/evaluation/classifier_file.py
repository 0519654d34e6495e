"""Reading a classifier .npz safely: every array's shape and type are checked from its .npy header before any
array is read (a few bytes can claim gigabytes), then the values (finite, labels in range, k sensible)."""
import zipfile

import numpy as np

from tripletloss.errors import UserError

#: The most bytes a classifier file's arrays may hold once loaded.
MAX_BYTES = 1 << 30
#: Array name -> (number of dimensions, dtype kind: U str, i/u int, f float) per method; "stored" arrays (the
#: training embeddings, which k-NN needs and predict's distances use) are checked wherever they are present.
LAYOUT = {"common": {"method": (0, "U"), "classes": (1, "U"), "dim": (0, "iu")},
          "svm": {"coef": (2, "f"), "intercept": (1, "f")},
          "knn": {"embeddings": (2, "f"), "labels": (1, "iu"), "k": (0, "iu")},
          "stored": {"embeddings": (2, "f"), "labels": (1, "iu")}}


def array_headers(path):
    """Return {name: (shape, dtype)} of the arrays of .npz file `path`, from their .npy headers only."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            headers[info.filename.removesuffix(".npy")] = (shape, dtype)
    return headers


def check_headers(headers, path):
    """Raise UserError naming `path` unless `headers` (array_headers) are a classifier's: the arrays of its
    method, each with the right number of dimensions and type, and MAX_BYTES in all at most. Returns nothing."""
    method = "svm" if "coef" in headers else "knn"
    wanted = {**LAYOUT["common"], **LAYOUT[method]}
    missing = sorted(set(wanted) - set(headers))
    if missing:
        raise UserError(f"{path}: not a classifier file written by `classify train` (no {', '.join(missing)})")
    for name, (ndim, kinds) in {**wanted, **LAYOUT["stored"]}.items():
        if name not in headers:
            continue
        shape, dtype = headers[name]
        if len(shape) != ndim or dtype.kind not in kinds:
            raise UserError(f"{path}: array '{name}' is {dtype}{list(shape)}, not a {ndim}-d {kinds} array")
    size = sum(int(np.prod(shape, dtype=np.float64)) * dtype.itemsize for shape, dtype in headers.values())
    if size > MAX_BYTES:
        raise UserError(f"{path}: its arrays would take {size / 2**30:.1f} GiB, over the "
                        f"{MAX_BYTES / 2**30:.0f} GiB limit of a classifier file")


def check_values(clf, path):
    """Raise UserError naming `path` when the arrays of classifier dict `clf` do not fit together (classes,
    dim, rows, labels, k) or hold NaN/inf. Returns nothing."""
    classes, dim = len(clf["classes"]), int(clf["dim"])
    problems = [(classes < 2, f"{classes} classes (at least 2 needed)")]
    for name in ("coef", "embeddings"):
        if name in clf:
            problems += [(dim < 1 or clf[name].shape[1] != dim, f"dim {dim} but {name} rows of {clf[name].shape[1]}"),
                         (not np.isfinite(clf[name]).all(), f"NaN or inf values in {name}")]
    if "coef" in clf:
        problems += [(len(clf["coef"]) != classes or clf["intercept"].shape != (classes,),
                      f"{len(clf['coef'])} coefficient rows, {len(clf['intercept'])} intercepts for {classes} "
                      f"classes"), (not np.isfinite(clf["intercept"]).all(), "NaN or inf values in intercept")]
    if "embeddings" in clf:
        labels, rows = clf.get("labels", np.zeros(0, int)), len(clf["embeddings"])
        problems += [(len(labels) != rows, f"{len(labels)} labels for {rows} embeddings"),
                     (len(labels) and not 0 <= labels.min() <= labels.max() < classes, "labels out of range")]
    if str(clf["method"]) == "knn":
        problems += [(not 1 <= int(clf["k"]) <= len(clf["embeddings"]),
                      f"k {int(clf['k'])} outside 1..{len(clf['embeddings'])}")]
    for bad, what in problems:
        if bad:
            raise UserError(f"{path}: damaged classifier file: {what}")


def load_classifier(path):
    """Read a classifier .npz (allow_pickle=False: no code is ever loaded) after check_headers, then
    check_values; return its array dict. UserError naming `path` if it is not a sound classifier file."""
    try:
        check_headers(array_headers(path), path)
        with np.load(path, allow_pickle=False) as data:
            clf = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{path}: not a classifier file ({type(exc).__name__}: {exc})") from None
    if str(clf["method"]) not in ("svm", "knn"):
        raise UserError(f"{path}: unknown classifier method {str(clf['method'])!r}")
    check_values(clf, path)
    return clf
