"""Stage 1 (and end-to-end stage 2) speed: the old data path and layout vs the new, and a plain PyTorch loop.

    python bench/stage1.py [--data-dir DIR] [--identities 40] [--epochs 2] [--triplet-steps 10] [--quick]

Each row is one fresh `python train.py` process (or, for the peer, one process running a plain loop), in the same
run, on the same images, batch size, torch threads and DataLoader workers:

- before: `decode_cache=false channels_last=false precision=fp32`, the data path, memory layout and arithmetic of the
  code before issue 13 (every image decoded, resized and augmented per epoch in DataLoader workers; NCHW fp32
  convolutions);
- after (cold): the defaults in an empty work dir, so building the decode cache is part of its wall clock;
- after (warm): the defaults again in the same work dir, the cache already built;
- plain loop: what a user would write instead: ImageFolder + transforms (Resize, RandomCrop, RandomHorizontalFlip,
  ToTensor, Normalize) + DataLoader(shuffle, workers) and the same YAML network, optimizer and loss (torchvision's
  own classes when torchvision imports, else the same PIL calls written out).

Stage 2 is timed the same way end to end: the backbone trainable (a triplet YAML without lr_mult 0), P x K batches.
`--breakdown` instead measures where a step's CPU time goes, per image, in this process on one torch thread
(CPU time, so that other load on the machine does not count): decoding, resizing and augmenting one image at a time
(the old path), a batch made from the decode cache, and forward + backward + update in either memory layout and,
channels-last, in bf16 autocast (`precision`).

Data: --data-dir, else the aligned celeba_subset at /work/data/subset_aligned when present (its first --identities
training identities), else the built-in synthetic faces. Prints a markdown table: wall clock (process start to
exit), images/s over the training steps, the share of step time spent waiting for the batch source, and ratios.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tripletloss.data.folders import scan_folders  # noqa: E402
from tripletloss.evaluation.runlog import read_metrics  # noqa: E402

ALIGNED = Path("/work/data/subset_aligned")
SPLITS = ROOT.parent / "shared" / "data" / "celeba_subset" / "splits" / "train_identities.txt"
E2E_TRIPLET = """name: triplet_end_to_end
include: [backbone_resnet_small.yaml]
layers:
  - {name: fc9_1, type: fc, num_output: $embedding_size, bottom: bn8}
  - {name: norm, type: l2norm}
outputs: {features: bn8, embedding: norm}
"""
PATHS = {"before": ["decode_cache=false", "channels_last=false", "precision=fp32"], "after (cold cache)": [],
         "after (warm cache)": []}


def identity_file(data_dir, count, out):
    """Write the first `count` identities of `data_dir` (celeba_subset's training split where it is known) to
    `out`; return its path."""
    names = sorted(p.name for p in Path(data_dir).iterdir() if p.is_dir())
    if SPLITS.is_file():
        train = set(SPLITS.read_text().split())
        names = [n for n in names if n in train]
    out.write_text("\n".join(names[:count]) + "\n")
    return out


def train_run(stage, work, sets, extra=()):
    """Run `python train.py --stage STAGE` with `--set` overrides `sets` in work dir `work`; return (wall seconds,
    run dir)."""
    cmd = [sys.executable, str(ROOT / "train.py"), "--stage", stage, *extra]
    cmd += [x for item in sets + [f"work_dir={work}"] for x in ("--set", item)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, sorted(Path(work).glob(f"{stage}-*"))[-1]


def step_times(run_dir):
    """(summed loader wait, summed compute) seconds and step count from a run's metrics.csv (logged every step)."""
    series = read_metrics(run_dir)
    wait, compute = (next(iter(series[f"time/{k}"].values()))[1] for k in ("loader_wait", "compute"))
    return float(wait.sum()), float(compute.sum()), len(wait)


def row(wall, wait, compute, steps, batch):
    """A result row: {wall, img_s, wait_pct, steps}."""
    return {"wall": wall, "img_s": steps * batch / (wait + compute), "wait_pct": 100 * wait / (wait + compute),
            "steps": steps}


def run_stage(stage, common, work_root, batch, extra=()):
    """Time every entry of PATHS for `stage`; return {path name: row}."""
    rows = {}
    for name, sets in PATHS.items():
        work = work_root / f"{stage}-{'before' if name == 'before' else 'after'}"
        wall, run_dir = train_run(stage, work, common + sets, extra)
        rows[name] = row(wall, *step_times(run_dir), batch)
        print(f"  {stage} {name}: {rows[name]}", flush=True)
    return rows


def run_peer(stage, args_list):
    """Run the plain loop in a fresh process (`--peer`); return its row."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--peer", stage, *args_list], cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(f"plain {stage} loop failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return row(time.perf_counter() - start, result["wait"], result["compute"], result["steps"], result["batch"])


def print_table(results, header):
    """Print the markdown table of {stage: {path: row}} with ratios to 'before' and to the plain loop."""
    print(f"\n{header}\n")
    print("| stage | path | steps | wall clock (s) | images/s | loader wait | wall vs before | images/s vs "
          "before | images/s vs plain loop |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for stage, rows in results.items():
        before, peer = rows["before"], rows["plain loop"]
        for name, r in rows.items():
            print(f"| {stage} | {name} | {r['steps']} | {r['wall']:.1f} | {r['img_s']:.1f} | {r['wait_pct']:.1f} % "
                  f"| {before['wall'] / r['wall']:.2f}x | {r['img_s'] / before['img_s']:.2f}x | "
                  f"{r['img_s'] / peer['img_s']:.2f}x |")


def cpu_ms_per_image(fn, images, repeat=3):
    """Median CPU milliseconds per image of `fn()`, which handles `images` images."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append((time.process_time() - start) * 1000 / images)
    return sorted(times)[len(times) // 2]


def breakdown(settings, batch=64):
    """Print the CPU cost per image of each part of a stage-1 step, old path vs new."""
    import numpy as np
    import torch

    from tripletloss.data.decode import read_image
    from tripletloss.data.decode_cache import open_decode_cache
    from tripletloss.data.transforms import augment_batch, make_preprocess, to_input
    from tripletloss.stages.training_data import load_training_data
    torch.set_num_threads(1)
    paths, labels, classes = load_training_data(settings)
    paths, pre, seeds = paths[:batch], make_preprocess(settings), list(range(batch))
    decoded = [read_image(p) for p in paths]
    cache = open_decode_cache(paths, pre, settings["work_dir"], progress=False)[0]
    rows = {"decode (cv2.imdecode + RGB)": cpu_ms_per_image(lambda: [read_image(p) for p in paths], batch),
            "resize + crop + flip + normalise, per image": cpu_ms_per_image(
                lambda: [to_input(im, pre, s) for im, s in zip(decoded, seeds)], batch),
            "batch from the decode cache (gather + augment_batch)": cpu_ms_per_image(
                lambda: augment_batch(torch.from_numpy(cache[np.arange(batch)]), seeds, pre), batch)}
    rows.update(step_costs(settings, len(classes), batch))
    print("\n| part of a step | CPU ms per image (1 thread) |\n|---|---:|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.3f} |")


def step_costs(settings, num_classes, batch):
    """CPU ms per image of forward + backward + SGD update of the stage-1 net: NCHW, channels_last, and
    channels_last under bf16 autocast (what precision=auto picks on CPUs with native bf16)."""
    import torch
    import torch.nn.functional as F

    from tripletloss.engine import precision
    from tripletloss.net import build_net
    from tripletloss.resources import resolve_path
    out = {}
    variants = {"NCHW": (torch.contiguous_format, "fp32"), "channels_last": (torch.channels_last, "fp32"),
                "channels_last, bf16 autocast": (torch.channels_last, "bf16")}
    for name, (layout, mode) in variants.items():
        net = build_net(resolve_path(settings["softmax_net"]), {"num_classes": num_classes, "embedding_size": 128})
        net = net.to(memory_format=layout)
        model = precision.wrap(net, mode, torch.device("cpu"))
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, 3, settings["image_size"], settings["image_size"]).contiguous(memory_format=layout)
        y = torch.randint(0, num_classes, (batch,))

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x, ["logits"])["logits"], y).backward()
            opt.step()
        step()
        out[f"forward + backward + update, {name}"] = cpu_ms_per_image(step, batch)
    return out


def parse_args(argv=None):
    """The bench's command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="default: /work/data/subset_aligned if present, else the synthetic faces")
    p.add_argument("--identities", type=int, default=40, help="identities trained on (a slice of the data)")
    p.add_argument("--epochs", type=int, default=2, help="stage-1 epochs per run")
    p.add_argument("--triplet-steps", type=int, default=10, help="end-to-end stage-2 steps per run (0: skip)")
    p.add_argument("--quick", action="store_true", help="16 identities (one stage-2 batch), 1 epoch, 4 stage-2 steps")
    p.add_argument("--breakdown", action="store_true", help="CPU cost of each part of a step instead")
    p.add_argument("--peer", choices=("softmax", "triplet"), help=argparse.SUPPRESS)
    p.add_argument("--sets", default="[]", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def common_settings(args, work_root):
    """The `--set` overrides every run shares (data, identities, log every step); returns (list, description)."""
    data_dir = args.data_dir or (str(ALIGNED) if ALIGNED.is_dir() else "")
    sets = ["log_every_steps=1", f"softmax_epochs={args.epochs}", f"batches_per_epoch={args.triplet_steps}",
            "triplet_epochs=1", f"triplet_net={work_root / 'triplet_e2e.yaml'}"]
    if not data_dir:
        return sets, "the built-in synthetic faces (60 identities x 20 images)"
    ids = identity_file(data_dir, args.identities, work_root / "identities.txt")
    images = len(scan_folders(data_dir, ids.read_text().split())[0])
    return sets + [f"data_dir={data_dir}", f"train_identities={ids}"], \
        f"{data_dir}: {args.identities} identities, {images} images"


def main():
    """Run every path of both stages and print the table (--breakdown: the CPU costs; --peer: one plain loop)."""
    args = parse_args()
    if args.peer:
        from plain_loop import plain_loop
        print(json.dumps(plain_loop(args.peer, json.loads(args.sets))))
        return
    if args.quick:
        args.identities, args.epochs, args.triplet_steps = 16, 1, 4
    work_root = Path(tempfile.mkdtemp(prefix="bench_stage1_"))
    try:
        compare(args, work_root)
    finally:
        shutil.rmtree(work_root)


def compare(args, work_root):
    """Time the paths of both stages (or the breakdown) with scratch files in `work_root`; print the table."""
    import torch

    from tripletloss.settings import load_settings
    shutil.copy(ROOT / "prototxt_like" / "backbone_resnet_small.yaml", work_root)
    (work_root / "triplet_e2e.yaml").write_text(E2E_TRIPLET)
    common, described = common_settings(args, work_root)
    settings = load_settings(overrides=common + [f"work_dir={work_root / 'breakdown'}"])
    if args.breakdown:
        print(f"Data: {described}")
        return breakdown(settings)
    results = {"softmax": run_stage("softmax", common, work_root, settings["softmax_batch_size"])}
    results["softmax"]["plain loop"] = run_peer("softmax", ["--sets", json.dumps(common)])
    if args.triplet_steps:
        stage1 = sorted((work_root / "softmax-before").glob("softmax-*"))[-1] / "model.pt"
        batch = settings["identities_per_batch"] * settings["images_per_identity"]
        results["triplet"] = run_stage("triplet", common, work_root, batch, ["--finetune", str(stage1)])
        results["triplet"]["plain loop"] = run_peer("triplet", ["--sets", json.dumps(common)])
    print_table(results, f"Data: {described}; {torch.get_num_threads()} torch threads, "
                         f"{settings['num_workers']} DataLoader workers, device {settings['device']}")


if __name__ == "__main__":
    main()
