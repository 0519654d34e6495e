"""davidsandberg/facenet's triplet-loss training as on its wiki ("Triplet loss training"):

    python src/train_tripletloss.py --image_size 160 --model_def models.inception_resnet_v1 \
        --optimizer RMSPROP --learning_rate 0.01 --weight_decay 1e-4 --max_nrof_epochs 500   (+ data/log dirs)

with train_tripletloss.py's defaults for everything else (people_per_batch 45, images_per_person 40, alpha 0.2,
embedding_size 128, moving_average_decay 0.9999, learning_rate_decay_epochs 100, decay factor 1.0, no random
crop or flip, tf.image.per_image_standardization). The wiki line is quoted from memory of the wiki page (it is
not part of the repository).

    python train.py --stage softmax --config recipes/facenet_triplet.py   # a backbone with its input handling
    python train.py --stage triplet --config recipes/facenet_triplet.py

What differs from the original, and why:
- Network: this toolkit's 96 px ResNet backbone, frozen, with fc9_1 trained on it (facenet trains the whole
  Inception-ResNet-v1 at 160 px with triplet loss from scratch). Stage 2 keeps the input handling of its backbone,
  so per-image standardisation applies when the backbone was trained with this file.
- Selection: "violating" is facenet's code (select_triplets keeps negatives with d_an - d_ap < alpha, its "VGG Face
  selection"; the FaceNet-paper rule is commented out there), one random negative per (a, p) pair, a < p.
  facenet then trains on those triplets in batches of 90 images; here the loss is the mean over all triplets of
  the 45 x 40 = 1800-image sample in one step. An identity with fewer than 40 images contributes repeats here
  (facenet takes fewer images).
- Epochs: facenet's epoch is 1000 batches of 90 images; here it is about one pass over the images.
- RMSPROP: torch.optim.RMSprop with facenet's decay 0.9, momentum 0.9, epsilon 1.0, but torch adds epsilon
  outside the square root (TensorFlow inside), so the steps are not identical.
"""
BASE_CONFIG = "../config.py"

optimizer = "RMSPROP"
triplet_lr = 0.01
weight_decay = 1e-4
triplet_epochs = 500
lr_schedule = "exponential"  # tf.train.exponential_decay, staircase
learning_rate_decay_epochs = 100
learning_rate_decay_factor = 1.0
moving_average_decay = 0.9999
warmup_epochs = 0.0

selection = "violating"
identities_per_batch = 45  # people_per_batch
images_per_identity = 40   # images_per_person
margin = 0.2               # alpha
embedding_size = 128
augment_flip = False       # --random_flip not given
resize_size = 96           # = image_size: --random_crop not given
per_image_standardization = True  # tf.image.per_image_standardization (stage 1; stage 2 follows its backbone)
