"""`export --format onnx|torchscript`: the embedding network of a checkpoint as a file other runtimes load."""
from tripletloss.errors import UserError


def register(subparsers):
    """Add the `export` subcommand."""
    p = subparsers.add_parser("export", help="write the embedding network as ONNX or TorchScript",
                              description=__doc__)
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint written by train.py")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="default onnx")
    p.add_argument("--out", required=True, metavar="FILE", help="model file (FILE.json is written beside it)")
    p.set_defaults(func=run)


def run(args):
    """Export and print the written files."""
    if args.format == "onnx":
        try:
            import onnx  # noqa: F401  (torch.onnx.export needs it)
        except ImportError:
            raise UserError("--format onnx needs the onnx package: pip install onnx") from None
    from tripletloss.deploy import export_model
    for path in export_model(args.model, args.out, args.format):
        print(f"wrote {path}")
    return 0
