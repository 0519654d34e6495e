"""`plot-loss`: PNGs of loss, learning rate and validation accuracy over steps from RUN_DIR/metrics.csv
(several run directories: one line per run)."""
from tripletloss.evaluation.plots import plot_run
from tripletloss.outputs import folder_target


def register(subparsers):
    """Add the `plot-loss` subcommand."""
    p = subparsers.add_parser("plot-loss", help="plot training curves from a run's metrics.csv",
                              description=__doc__)
    p.add_argument("run_dir", nargs="+", metavar="RUN_DIR",
                   help="run directory holding metrics.csv; several: one line per run on each plot")
    p.add_argument("--out", metavar="DIR", help="where to write the PNGs (default: the first RUN_DIR)")
    p.set_defaults(func=run)


def run(args):
    """Write the curve PNGs; print each path written and a note for each quantity the CSV lacks."""
    folder_target(args.out or args.run_dir[0], "--out")
    written, missing = plot_run(args.run_dir, args.out)
    for path in written:
        print(f"wrote {path}")
    for key in missing:
        print(f"note: no {key} rows in metrics.csv, skipped")
    return 0
