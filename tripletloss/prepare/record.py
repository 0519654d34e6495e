"""The alignment record: which template, size and margin a folder's faces were aligned with.

`align` writes it as OUT/alignment.json; training copies it from data_dir into the checkpoint's preprocess dict
(key "align"), so inference can align raw photos the way the training faces were.
"""
import json
from pathlib import Path

from tripletloss import __version__
from tripletloss.atomic import write_atomic
from tripletloss.prepare.templates import TEMPLATES

RECORD_NAME = "alignment.json"
#: What an alignment is: the keys of a record that a checkpoint keeps and that two alignments must share.
ALIGNMENT_KEYS = ("template", "size", "margin")


def alignment_of_options(options):
    """Return the record dict {template, size, margin, tool} of an AlignOptions."""
    return {"template": options.template.name, "size": int(options.size), "margin": int(options.margin),
            "tool": f"tripletloss {__version__} align"}


def write_record(out, options):
    """Write OUT/alignment.json for a folder aligned with AlignOptions `options`; return its Path."""
    return write_atomic(Path(out) / RECORD_NAME, json.dumps(alignment_of_options(options), indent=1) + "\n")


def read_record(data_dir):
    """Return the alignment record of the first root of `data_dir` (roots joined with ':') that has one, or None."""
    for root in filter(None, str(data_dir or "").split(":")):
        path = Path(root) / RECORD_NAME
        if path.is_file():
            return json.loads(path.read_text())
    return None


def alignment_of(preprocess):
    """Return a checkpoint preprocess dict's alignment {template, size, margin}, or None when it names none.

    Checkpoints of imported networks name only a `template` (at its default size); newer ones hold "align".
    """
    if preprocess.get("align"):
        return preprocess["align"]
    name = preprocess.get("template")
    if name in TEMPLATES:
        return {"template": name, "size": TEMPLATES[name].default_size, "margin": 0}
    return None


def describe(alignment):
    """Return an alignment record as the `align` options that produce it, e.g. '--landmarks X --size 96'."""
    margin = f" --margin {alignment['margin']}" if alignment.get("margin") else ""
    return f"--landmarks {alignment['template']} --size {alignment['size']}{margin}"


def same_alignment(record, alignment):
    """True when a folder's alignment record `record` (None: the folder has none) names the template, size and
    margin of `alignment` (a {template, size, margin} dict)."""
    return record is not None and all(record.get(key) == alignment.get(key) for key in ALIGNMENT_KEYS)


def with_alignment(preprocess, data_dir):
    """Return `preprocess` with "align" set from `data_dir`'s alignment record (unchanged when it has none)."""
    record = read_record(data_dir)
    if record is None:
        return preprocess
    return {**preprocess, "align": {key: record[key] for key in ALIGNMENT_KEYS}}


def finetune_mismatch(preprocess, data_dir, source):
    """Return a one-line warning when the faces of `data_dir` are not aligned like those a checkpoint was trained on
    (its preprocess dict, loaded from file `source`): another template, size or margin in data_dir's record, or no
    record at all. None when they match or the checkpoint records no alignment."""
    wanted = alignment_of(preprocess)
    if wanted is None:
        return None
    record = read_record(data_dir)
    if same_alignment(record, wanted):
        return None
    have = f"were aligned with {describe(record)}" if record else f"have no {RECORD_NAME} (not aligned by `align`)"
    return (f"{source} was trained on faces aligned with {describe(wanted)}, the data_dir faces {have}: "
            f"`python -m tripletloss align RAW OUT {describe(wanted)}` aligns them the same way")
