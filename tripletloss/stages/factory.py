"""Building a stage ready to train: the net built and started from its checkpoint, the batches made (decode,
feature and teacher caches built or read), notes said; the stage classes get ready objects and do no I/O."""
from tripletloss.console import is_main, say, warn
from tripletloss.data.samplers import ShuffledBatches
from tripletloss.data.transforms import inherit_preprocess, make_preprocess
from tripletloss.engine.distributed import main_first
from tripletloss.engine.run_dir import final_model
from tripletloss.errors import ConfigError
from tripletloss.prepare.record import finetune_mismatch, with_alignment
from tripletloss.stages.batches import FeatureBatches, TeacherBatches, image_batches, training_dataset
from tripletloss.stages.features import cache_features, cacheable_top
from tripletloss.stages.nets import build_stage_net, on_device
from tripletloss.stages.restore import init_from_checkpoint, read_checkpoint
from tripletloss.stages.softmax import CLASSIFIER, SoftmaxStage
from tripletloss.stages.teacher import check_distill_width, teacher_targets
from tripletloss.stages.triplet import TripletStage, make_sampler

#: The stages by name (train.py --stage).
STAGES = {stage.name: stage for stage in (SoftmaxStage, TripletStage)}


def build_stage(name, settings, data, device, init=None, rank=0, world_size=1, progress=True):
    """Return the Stage `name` ("softmax" or "triplet") ready to train on `data` = (paths, labels, class names).

    init: the stages.restore.Checkpoint the net starts from (--finetune's, or the checkpoint a fine-tuning or
    triplet run resumes from); None: softmax from scratch, triplet from the newest finished softmax run in
    work_dir. rank, world_size: this process's share of every batch. progress: progress bars (main process only).
    Raises UserError (one line) for data, settings, YAML or checkpoint that do not fit, before any run exists.
    """
    build = {SoftmaxStage.name: _softmax_stage, TripletStage.name: _triplet_stage}[name]
    return build(settings, data, device, init, rank, world_size, progress)


def _softmax_stage(settings, data, device, init, rank, world_size, progress):
    paths, labels, classes = data
    if len(classes) < 2:
        raise ConfigError(f"data_dir: the softmax stage needs images of at least 2 identities, found "
                          f"{len(classes)} ({', '.join(classes)})")
    yaml_variables = {"num_classes": len(classes), "embedding_size": settings["embedding_size"]}
    net, preprocess = _started_net(SoftmaxStage, settings, yaml_variables, init, device, skip=(CLASSIFIER,))
    unfreeze = settings["finetune_unfreeze_from"]
    if init is not None and unfreeze and unfreeze not in net.layers:
        raise ConfigError(f"finetune_unfreeze_from: no layer '{unfreeze}' in {settings['softmax_net']}")
    sampler = ShuffledBatches(len(paths), settings["softmax_batch_size"], settings["seed"], rank, world_size)
    progress = _shows_bars(progress)
    if settings["teacher"]:  # decoded per epoch (no decode cache): the teacher's rows follow the loaded images
        descriptors, has_teacher = main_first(teacher_targets, settings, paths, device, progress)  # rank 0 first
        check_distill_width(net, descriptors.shape[2], f"softmax_net {settings['softmax_net']}")
        dataset = training_dataset(paths, labels, preprocess, settings)
        batches = TeacherBatches(dataset, sampler, settings["num_workers"], device, descriptors, has_teacher)
    else:
        batches = image_batches(paths, labels, preprocess, sampler, settings, device, progress)
    return SoftmaxStage(net, batches, settings, with_alignment(preprocess, settings["data_dir"]), classes,
                        yaml_variables, device, finetuning=init is not None)


def _triplet_stage(settings, data, device, init, rank, world_size, progress):
    paths, labels, classes = data
    if init is None:  # the newest finished stage-1 model
        init = read_checkpoint(final_model(settings["work_dir"], "softmax"))
    yaml_variables = {"embedding_size": settings["embedding_size"]}
    net, preprocess = _started_net(TripletStage, settings, yaml_variables, init, device)
    sampler = make_sampler(settings, labels, rank, world_size)
    if sampler.singletons:
        say(f"note: {sampler.singletons} identities with a single image are not used as triplet anchors")
    top, progress = cacheable_top(net), _shows_bars(progress)
    if top and settings["cache_features"] and not settings["random_rotate"]:  # the cache holds no rotations
        features, bad_files = cache_features(net, top, paths, labels, preprocess, settings["num_workers"], device,
                                             progress)
        batches = FeatureBatches(features, top, labels, sampler, settings["augment_flip"], device, bad_files)
    else:
        batches = image_batches(paths, labels, preprocess, sampler, settings, device, progress)
    return TripletStage(net, batches, settings, with_alignment(preprocess, settings["data_dir"]), classes,
                        yaml_variables, device)


def _started_net(stage_class, settings, yaml_variables, init, device, skip=()):
    """(net, training preprocess) of `stage_class`: its net built, restored from Checkpoint `init` (all but the
    layers in `skip`; nothing when None) and moved to `device`; the preprocess inherits `init`'s normalisation."""
    net = build_stage_net(stage_class, settings, yaml_variables)
    preprocess = make_preprocess(settings)
    if init is not None:
        init_from_checkpoint(net, init, skip)
        preprocess = inherit_preprocess(init.contents["preprocess"], settings, init.path)
        mismatch = finetune_mismatch(init.contents["preprocess"], settings["data_dir"], init.path)
        if mismatch:
            warn(mismatch)
    return on_device(net, settings, device), preprocess


def _shows_bars(progress):
    """True when this process draws progress bars: `progress` asked for and the main process."""
    return progress and is_main()
