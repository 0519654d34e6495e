"""cmusatyalab/openface's training (training/main.lua, opts.lua, train.lua) as settings of this toolkit.

    python train.py --stage softmax --config recipes/openface.py   # a backbone first (see below)
    python train.py --stage triplet --config recipes/openface.py

OpenFace's defaults: peoplePerBatch 15, imagesPerPerson 20, alpha 0.2, embSize 128, imgDim 96, epochSize 250,
optim.adam with its default learning rate 1e-3 and no weight decay; every same-identity pair (a, p), a < p, with one
negative drawn uniformly among those with d_an - d_ap < alpha (train.lua: pairs without one are left out).

What differs from the original, and why:
- Network: OpenFace trains nn4.small2 end to end with triplet loss; here stage 2 trains fc9_1 on this toolkit's
  frozen 96 px backbone, so a softmax stage comes first.
- Epochs: OpenFace's epoch is 250 batches; here about one pass over the images (set batches_per_epoch=250 for its).
- Extra negatives: `extra_negatives` adds N images of identities outside the batch as negatives only. Issue 15
  cites OpenFace's training notes for them; its repository's training/ code (dataset.lua, train.lua) samples none,
  so this recipe leaves it at 0: try `--set extra_negatives=15`.
"""
BASE_CONFIG = "../config.py"

optimizer = "adam"         # optim.adam: lr 1e-3, betas (0.9, 0.999), epsilon 1e-8, as torch's defaults
triplet_lr = 0.001
weight_decay = 0.0
lr_schedule = "constant"
warmup_epochs = 0.0
selection = "violating"    # train.lua: normsP < alpha, one random negative per pair
identities_per_batch = 15  # peoplePerBatch
images_per_identity = 20   # imagesPerPerson
margin = 0.2               # alpha
embedding_size = 128       # embSize
extra_negatives = 0
