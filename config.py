"""Settings a user edits. `python train.py` reads this file; `--set KEY=VALUE` overrides any value for one run.

Every value is type- and range-checked before any data is read: tripletloss/settings_schema.py declares each
setting once (type, range, a line of help), and `python train.py --help` lists them with the values set here.
"""

# ---------------------------------------------------------------- data
# Folder of face images, one sub-folder per identity (jpg/png/pgm, any case). Several roots can be joined with ':'.
# Empty: use the built-in SYNTHETIC face dataset, generated on first use under .cache/ (for trying the pipeline).
data_dir = ""
# Optional text file of identity names (one per line) to train on; other identities in data_dir are ignored.
train_identities = ""
# Optional text file of identity names never to train on (e.g. the identities of a validation pairs file).
exclude_identities = ""
# Identities with fewer images than this (counted after joining the roots of data_dir) are not trained on.
min_images_per_identity = 1
image_size = 96            # network input (pixels, square); must match the YAML's `input: size`
resize_size = 108          # images are resized to this, then cropped to image_size (random crop when training)
crop_fraction = 1.0        # centre square fraction of each image kept before resizing (e.g. 0.6 for loose crops)
augment_flip = True        # random horizontal flip when training
random_rotate = False      # random rotation by up to +-10 degrees when training (facenet's --random_rotate)
per_image_standardization = False  # normalise each image by its own mean and std (facenet's prewhiten), not 127.5/128
num_workers = 2            # processes decoding images (the decode cache's first build, or every epoch without it);
                           # capped by CPU cores and memory
# Decode each training image once into a uint8 cache under work_dir/.decode_cache/ (re-read when a file changes)
# and crop, flip and normalise whole batches at once: no decoding after the first epoch, no loader processes.
# random_rotate or per_image_standardization turn it off (images then decode every epoch, see README).
decode_cache = True

# ---------------------------------------------------------------- run
work_dir = "runs"          # each run gets work_dir/<stage>-<date>-<time>/ with config, checkpoints and logs
device = "auto"            # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
seed = 0                   # seeds python, numpy and torch; the same seed reproduces a run on the same device
deterministic = False      # torch deterministic algorithms (bit-identical CPU reruns; slower on GPU)
channels_last = True       # channels-last memory layout for the convolutions (oneDNN: ~11 % less CPU per image)
# Forward passes over images in bf16 autocast (weights, gradients and losses stay float32): "auto" = bf16 where
# the device computes it natively (CPUs with AVX512-BF16/AMX: ~2x faster steps; bf16-capable GPUs), "fp32", "bf16".
precision = "auto"
checkpoint_every_steps = 0  # also checkpoint every N steps inside an epoch (0: only at epoch ends)
keep_checkpoints = 3       # keep the newest N step/epoch checkpoints (plus best.pt)
max_nonfinite_steps = 5    # stop after this many consecutive steps with a NaN/inf loss or gradient
log_every_steps = 10       # TensorBoard / metrics.csv scalars every N steps

# ---------------------------------------------------------------- stage 1: softmax pretraining (fc9)
softmax_net = "prototxt_like/softmax.yaml"
softmax_epochs = 30
softmax_batch_size = 64
softmax_lr = 0.05
softmax_label_smoothing = 0.1
# Fine-tuning (train.py --finetune CKPT): first train only the new classifier for this many epochs,
# then unfreeze every layer from `finetune_unfreeze_from` onward (a layer name; "" = the whole net).
finetune_freeze_epochs = 2
finetune_unfreeze_from = "res4a"  # the model card's measured ORL fine-tuning recipe
# Extra stage-1 terms (facenet's train_softmax.py); each weight 0 = off. They act on the net's `prelogits` output
# (the classifier's input), or on `embedding` when the YAML names no `prelogits`.
softmax_weight = 1.0       # weight of the cross-entropy; 0 with a teacher: distillation instead of softmax
center_loss = 0.0          # center loss weight: mean (prelogits - their class centre)^2
center_loss_alpha = 0.95   # centre update per step: centres[y] -= (1 - alpha) * (centres[y] - prelogits)
prelogits_norm = 0.0       # weight of the batch mean of the p-norm of the prelogits
prelogits_norm_p = 1.0     # the p of that norm
# Distillation: the student's `distill` output (prototxt_like/softmax_distill.yaml) learns to match a teacher
# network's descriptor of the same photo, e.g. teacher = "models/dlib_resnet_v1.pt" (python -m tripletloss
# import-dlib) on dlib_chip_150 copies of the training images (align --landmarks dlib_chip_150). Teacher
# descriptors are computed once and cached under work_dir/teacher_cache/.
teacher = ""               # teacher checkpoint; "" = no distillation
teacher_data_dir = ""      # the teacher's copies of the images: one root per data_dir root (same order), same
                           # identity folders and file names (any extension)
teacher_weight = 1.0       # weight of the distillation term
teacher_loss = "cosine"    # cosine: squared distance of the L2-normalised descriptors | mse: raw mean squared error

# ---------------------------------------------------------------- stage 2: triplet training (fc9_1)
triplet_net = "prototxt_like/triplet.yaml"
triplet_epochs = 20
triplet_lr = 0.05
embedding_size = 128       # width of fc9_1, the L2-normalised embedding
identities_per_batch = 16  # P: identities in each batch
images_per_identity = 8    # K: images of each identity in each batch (>= 2 for triplets)
margin = 0.2               # triplet margin, on squared euclidean distances between unit vectors
selection = "semihard"     # semihard | violating | batch_hard | batch_all | pinguo (tripletloss.mining)
# pinguo: batches of 3T images (one anchor image T times, T positives, T negatives; see README), T:
pinguo_triplets = 10
extra_negatives = 0        # add N images of identities not in the batch, as negatives only (OpenFace); P x K batches
mining_backend = "auto"    # auto | torch | cuda
batches_per_epoch = 0      # 0: about one pass over the images per epoch
cache_features = True      # stage 2 on frozen-backbone features computed once (centre crop and its flip)

# ---------------------------------------------------------------- optimisation (both stages)
# sgd | adam (torch defaults) | facenet's ADAGRAD | ADADELTA | RMSPROP | MOM | ADAM, with facenet's constants
optimizer = "sgd"
momentum = 0.9
weight_decay = 5e-4
lr_schedule = "cosine"     # cosine | step | constant | exponential
lr_step_epochs = 10        # step schedule: multiply by lr_gamma every N epochs
lr_gamma = 0.1
warmup_epochs = 0.0        # linear warm-up from 0, in epochs (fractions allowed)
grad_clip = 0.0            # clip the gradient norm to this (0: off)
learning_rate_decay_epochs = 100  # exponential schedule: multiply by learning_rate_decay_factor every N epochs
learning_rate_decay_factor = 1.0
# facenet's schedule file ("epoch: lr" lines, '#' comments, lr -1 stops), used by a stage whose lr is -1
learning_rate_schedule_file = ""
moving_average_decay = 0.0  # exponential moving average of the weights (facenet: 0.9999); 0: off
health_intervals = 5       # warn when collapse / a loss stuck at the margin lasts N logging intervals (0: off)

# ---------------------------------------------------------------- evaluation during training
# An LFW-format pairs file and the folder its names refer to; evaluated every eval_every_epochs in both stages.
lfw_dir = ""
pairs = ""
eval_every_epochs = 1
eval_flip = False          # flip test-time augmentation
