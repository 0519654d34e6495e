"""`tripletloss prune DIR --min-images N`: move identities with fewer than N images aside."""
from tripletloss.commands.argtypes import positive_int
from tripletloss.prepare.prune import prune_dataset, pruned_dir


def register(subparsers):
    """Add the `prune` subcommand to `subparsers`."""
    p = subparsers.add_parser("prune", help="move identities with too few images to <DIR>_pruned/",
                              description="Move DIR/<identity> folders with fewer than N images to a sibling "
                                          "<DIR>_pruned/ folder (nothing is deleted).")
    p.add_argument("dir", help="dataset folder, one sub-folder per identity")
    p.add_argument("--min-images", type=positive_int, default=10,
                   help="keep identities with at least N images (default 10)")
    p.add_argument("--dry-run", action="store_true", help="only list the identities that would be moved")
    p.set_defaults(func=run)


def run(args):
    """Prune (or list) small identities and print them; return 0."""
    small = prune_dataset(args.dir, args.min_images, args.dry_run)
    for ident, count in small:
        print(f"{ident.name}\t{count}")
    verb = "would move" if args.dry_run else f"moved to {pruned_dir(args.dir)}:"
    print(f"{verb} {len(small)} identities with fewer than {args.min_images} images")
    return 0
