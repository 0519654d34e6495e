"""`tripletloss check DIR [--fix]`: report unusable files and per-identity counts of a dataset."""
from tripletloss.prepare.check import quarantine, quarantine_dir, scan_dataset


def register(subparsers):
    """Add the `check` subcommand to `subparsers`."""
    p = subparsers.add_parser("check", help="find undecodable/truncated/CMYK/16-bit/non-image files",
                              description="Scan DIR/<identity>/ files; exit 1 when bad files remain.")
    p.add_argument("dir", help="dataset folder, one sub-folder per identity")
    p.add_argument("--fix", action="store_true",
                   help="move bad files to <DIR>_quarantine/<identity>/ (nothing is deleted)")
    p.set_defaults(func=run)


def run(args):
    """Scan, print the summary and every bad file, optionally quarantine them; return 1 if bad files remain."""
    report = scan_dataset(args.dir, progress=True)
    print(report.summary())
    for path, reason in report.bad:
        print(f"BAD\t{path}\t{reason}")
    if report.bad and args.fix:
        moved = quarantine(report)
        print(f"moved {len(moved)} bad files to {quarantine_dir(args.dir)}")
        return 0
    return 1 if report.bad else 0
