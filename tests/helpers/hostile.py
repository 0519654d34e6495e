"""A corpus of hostile inputs, generated in the tests (never committed): decompression bombs of a few hundred
bytes, damaged and tampered checkpoints, crafted classifier files, broken YAML nets; plus the helpers the
reliability tests use to run a command in-process and check it changed none of its inputs.
"""
import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tripletloss.data.decode import jpeg_frame
from tripletloss.engine.run_dir import LOCK_NAME

# ---------------------------------------------------------------- images


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path, side=40000):
    """Write a valid-looking grey PNG whose header claims side x side pixels (a few hundred bytes); return it."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + _png_chunk(b"IEND", b"")
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return Path(path)


def jpeg_bomb(path, side=60000):
    """Write a small real JPEG whose frame header is patched to claim side x side pixels; return its path."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    at = jpeg_frame(bytes(data))
    data[at + 5:at + 9] = struct.pack(">HH", side, side)
    Path(path).write_bytes(bytes(data))
    return Path(path)


def undecodable(path):
    """Write a file with an image name that is not an image; return its path."""
    Path(path).write_bytes(b"this is not an image\n" * 4)
    return Path(path)


# ---------------------------------------------------------------- checkpoints


def tampered_checkpoint(source, path, change):
    """Save checkpoint `source` (a path) to `path` after `change(ckpt dict)` edits it; return `path`."""
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)
    return Path(path)


def nan_weights(ckpt):
    """Checkpoint change: NaN into the first floating tensor of the model."""
    key = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][key] = torch.full_like(ckpt["model"][key], float("nan"))


def drop_spec_layers(ckpt):
    """Checkpoint change: the stored network spec loses its layer list."""
    del ckpt["net"]["layers"]


def drop_preprocess_size(ckpt):
    """Checkpoint change: the stored preprocess loses its input size."""
    del ckpt["preprocess"]["size"]


def random_bytes(path, size=4096):
    """Write `size` random bytes (seeded) to `path`; return it."""
    Path(path).write_bytes(np.random.default_rng(0).bytes(size))
    return Path(path)


# ---------------------------------------------------------------- classifier files


def write_npz(path, **arrays):
    """Write `arrays` as an uncompressed .npz at `path`; return it."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def svm_arrays(dim, classes=("a", "b")):
    """A sound two-class linear classifier's arrays (method svm) for `dim`-d embeddings."""
    return {"method": np.array("svm"), "classes": np.array(classes), "dim": np.array(dim),
            "coef": np.eye(len(classes), dim), "intercept": np.zeros(len(classes)),
            "embeddings": np.eye(len(classes), dim, dtype=np.float32), "labels": np.arange(len(classes))}


def knn_arrays(dim, k):
    """A k-NN classifier's arrays over four `dim`-d embeddings of two classes, with `k` neighbours."""
    return {"method": np.array("knn"), "classes": np.array(["a", "b"]), "dim": np.array(dim),
            "embeddings": np.eye(4, dim, dtype=np.float32), "labels": np.array([0, 0, 1, 1]), "k": np.array(k)}


def npz_claiming(path, dim, rows):
    """Write a small .npz whose svm 'coef' header claims (rows, dim) float64 values (gigabytes for large rows)
    while the file holds a few bytes of them; return its path."""
    arrays = svm_arrays(dim)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (rows, dim)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            member = io.BytesIO()
            np.save(member, value)
            archive.writestr(f"{name}.npy", buffer.getvalue() + b"\0" * 64 if name == "coef" else member.getvalue())
    return Path(path)


# ---------------------------------------------------------------- running and checking


def snapshot(*roots):
    """{path: sha256} of every file under (or at) `roots` but run-directory locks (a refused `--resume` takes one
    before reading the checkpoint: it is no input)."""
    hashes = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
        for path in (p for p in files if p.name != LOCK_NAME):
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def run_main(main, argv, capsys):
    """Run an entry point `main(argv)` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def assert_one_line_error(code, err, *fragments):
    """Assert exit code 2 and one `error:` line on stderr, its last line, holding every fragment."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {err[-1500:]}"
    assert "Traceback" not in err, err[-3000:]
    assert sum(line.startswith("error:") for line in lines) == 1 and lines[-1].startswith("error:"), lines[-5:]
    for fragment in fragments:
        assert fragment in lines[-1], f"{fragment!r} not in {lines[-1]!r}"


def assert_case(case, code, out, err, before, after):
    """Check a hostile case's outcome: a one-line error when case['code'] is 2 (the default), else that exit
    code with every fragment of case['says'] in the output (a warning, a report line); and in every case that
    no input file changed (`before`, `after`: snapshots)."""
    if case.get("code", 2) == 2:
        assert_one_line_error(code, err, *case["says"])
    else:
        assert code == case["code"], err[-2000:]
        assert all(fragment in out + err for fragment in case["says"]), (out + err)[-2000:]
    assert before == after, "an input file changed"
