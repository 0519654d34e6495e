"""pinguo-luhaofang/tripletloss, the classic Caffe project: its solver.prototxt, data layer, select layer and
train.prototxt's triplet part, as settings of this toolkit.

    python train.py --stage softmax --config recipes/pinguo.py    # its (commented-out) softmax fc9 stage
    python train.py --stage triplet --config recipes/pinguo.py    # norm2 -> fc9_1 (512) -> pinguo selection

What differs from the original, and why:
- Backbone: this toolkit's ResNet at 96 px (backbone_resnet_small.yaml) instead of VGG-Face at 224 px; the
  normalised feature is its `bn8`, not VGG's fc7. Stage 2 trains fc9_1 on the frozen backbone (the original's
  prototxt left the VGG layers trainable at their own lr_mult; its README trains the triplet stage on top of the
  softmax model).
- Iterations: solver.prototxt runs 400,000 iterations with the rate divided by 10 after 200,000. Here a run is
  counted in epochs (one pass of anchors over the image list); the step comes at half the run, as there.
- Anchors walk through the image list in order, as there; the random draws (positives, negatives) come from the
  run's seed, so a run is reproducible and resumable (the original used Python's unseeded `random`).
- The original needs > T images of the anchor's identity (it loops forever otherwise); here an identity with
  fewer contributes all its other images plus repeats.
- Its negatives' identity draw maps the anchor's own identity to a neighbour; here it is uniform over the others.
"""
BASE_CONFIG = "../config.py"

softmax_lr = 0.05          # solver.prototxt base_lr
triplet_lr = 0.05
optimizer = "sgd"          # Caffe SGD, momentum 0.9, weight_decay 0.0005
momentum = 0.9
weight_decay = 0.0005
lr_schedule = "step"       # lr_policy "step", gamma 0.1, stepsize = max_iter / 2
lr_gamma = 0.1
softmax_epochs = 30
triplet_epochs = 20
lr_step_epochs = 10        # half of triplet_epochs (rerun softmax with --set lr_step_epochs=15 for its half)
softmax_label_smoothing = 0.0  # SoftmaxWithLoss
warmup_epochs = 0.0

triplet_net = "prototxt_like/triplet_pinguo.yaml"  # norm2 -> fc9_1 512-d, lr_mult 1, decay_mult 0, unnormalised
embedding_size = 512
selection = "pinguo"       # hardest positive paired with easiest negative; d_ap >= d_an: no gradient
pinguo_triplets = 10       # config.py BATCH_SIZE = 30 = 3 x 10
margin = 0.2               # the tripletloss layer's param_str
augment_flip = False       # its data layer only resizes (prep_im_for_blob): no flip, no random crop
resize_size = 96           # = image_size: no crop
