"""Fine-tuning the provided model on a user's own identities (ORL, 40 classes): better than training from scratch."""
import pytest
import torch

from tests.helpers.tiny import run_stage
from tripletloss import ROOT
from tripletloss.data.folders import scan_folders
from tripletloss.engine.checkpoint import load_checkpoint
from tripletloss.inference import compute_outputs, net_from_checkpoint

PROVIDED = ROOT / "models" / "tripletloss_celeba_small.pt"


def split_per_identity(src, dst, n_train):
    """Symlink the first n_train images of each identity into dst/train, the rest into dst/val."""
    for ident in sorted(p for p in src.iterdir() if p.is_dir()):
        files = sorted(ident.iterdir(), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)
        for part, chosen in (("train", files[:n_train]), ("val", files[n_train:])):
            (dst / part / ident.name).mkdir(parents=True, exist_ok=True)
            for f in chosen:
                (dst / part / ident.name / f.name).symlink_to(f)
    return dst / "train", dst / "val"


def val_accuracy(model_path, val_dir):
    """Classification accuracy of a softmax checkpoint's fc9 on the images of val_dir."""
    ckpt = load_checkpoint(model_path)
    paths, labels, classes = scan_folders(val_dir)
    assert classes == ckpt["classes"]
    logits = compute_outputs(net_from_checkpoint(ckpt, model_path), paths, ckpt["preprocess"], "logits",
                             torch.device("cpu"), num_workers=0, progress=False)[0]
    return (logits.argmax(1) == torch.tensor(labels)).float().mean().item()


@pytest.fixture(scope="module")
def orl_split(orl_dir, tmp_path_factory):
    return split_per_identity(orl_dir, tmp_path_factory.mktemp("orl_split"), n_train=7)


def test_finetune_beats_scratch_on_new_identities(orl_split, tmp_path, capsys):
    train_dir, val_dir = orl_split
    common = [f"work_dir={tmp_path}", "num_workers=0", "softmax_batch_size=32", "softmax_lr=0.05",
              "finetune_freeze_epochs=2", "finetune_unfreeze_from=res4a"]
    _, scratch = run_stage("softmax", train_dir, common, epochs=4)
    _, tuned = run_stage("softmax", train_dir, common, epochs=4, extra=["--finetune", str(PROVIDED)])
    acc_scratch, acc_tuned = val_accuracy(scratch / "model.pt", val_dir), val_accuracy(tuned / "model.pt", val_dir)
    print(f"ORL 40-class val accuracy: fine-tuned {acc_tuned:.3f}, from scratch {acc_scratch:.3f}, chance 0.025")
    assert acc_tuned > 3 * 0.025 and acc_tuned > acc_scratch + 0.15
    captured = capsys.readouterr()
    assert "restored" in captured.out and "fc9: re-initialised on purpose" in captured.out
    assert "tripletloss_celeba_small.pt was trained on faces aligned with --landmarks" in captured.err  # ORL: raw


def test_triplet_stage_on_the_provided_backbone(orl_split, tmp_path):
    train_dir, _ = orl_split
    _, run_dir = run_stage("triplet", train_dir, [f"work_dir={tmp_path}", "num_workers=0", "batches_per_epoch=3"],
                           epochs=1, extra=["--finetune", str(PROVIDED)])
    provided, trained = load_checkpoint(PROVIDED)["model"], load_checkpoint(run_dir / "model.pt")["model"]
    backbone = [k for k in trained if not k.startswith("fc9_1.")]
    assert all(torch.equal(provided[k], trained[k].to(provided[k].dtype)) for k in backbone)


def test_resuming_a_finetune_run_keeps_its_freeze_schedule(orl_split, tmp_path):
    train_dir, _ = orl_split
    common = [f"work_dir={tmp_path}", "num_workers=0", "softmax_batch_size=64", "finetune_freeze_epochs=1",
              "finetune_unfreeze_from=res4a", "deterministic=true"]
    _, run_dir = run_stage("softmax", train_dir, common, epochs=2, extra=["--finetune", str(PROVIDED)])
    first_epoch = sorted(run_dir.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))[0]
    _, resumed = run_stage("softmax", train_dir, common, epochs=2, extra=["--resume", str(first_epoch)])
    assert resumed == run_dir
    final = load_checkpoint(run_dir / "model.pt")
    assert final["finetuned"] is True
    reference = load_checkpoint(first_epoch)  # the resumed run rewrote model.pt; compare with a clean rerun
    _, again = run_stage("softmax", train_dir, [f"work_dir={tmp_path / 'again'}"] + common[1:], epochs=2,
                         extra=["--finetune", str(PROVIDED)])
    rerun = load_checkpoint(again / "model.pt")["model"]
    assert reference["state"]["epoch"] == 1
    assert all(torch.equal(final["model"][k], rerun[k]) for k in rerun)


def test_a_final_model_is_not_resumable(tmp_path, capsys):
    import train
    with pytest.raises(SystemExit) as exit_:
        train.main(["--stage", "triplet", "--resume", str(PROVIDED), "--set", f"work_dir={tmp_path}"])
    assert exit_.value.code == 2
    assert "a final model, not a resumable checkpoint" in capsys.readouterr().err
