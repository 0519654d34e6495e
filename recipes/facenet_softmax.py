"""davidsandberg/facenet's classifier (softmax) training as on its wiki ("Classifier training of
Inception-ResNet-v1", CASIA-WebFace):

    python src/train_softmax.py --image_size 160 --model_def models.inception_resnet_v1 --optimizer ADAM \
        --learning_rate -1 --max_nrof_epochs 150 --keep_probability 0.8 --random_crop --random_flip \
        --use_fixed_image_standardization \
        --learning_rate_schedule_file data/learning_rate_schedule_classifier_casia.txt --weight_decay 5e-4 \
        --embedding_size 512 --lfw_distance_metric 1 --lfw_use_flipped_images --lfw_subtract_mean \
        --validation_set_split_ratio 0.05 --validate_every_n_epochs 5 --prelogits_norm_loss_factor 5e-4

with train_softmax.py's defaults otherwise (batch_size 90, moving_average_decay 0.9999, learning_rate_decay_epochs
100, factor 1.0). The wiki line is quoted from memory of the wiki page (it is not part of the repository).

    python train.py --stage softmax --config recipes/facenet_softmax.py

What differs from the original, and why:
- Network: this toolkit's 96 px ResNet (its 0.2 dropout stands for keep_probability 0.8); the embedding is its
  bn8 feature, whose width the backbone fixes (facenet: a 512-d bottleneck). No prelogits norm loss (not available).
- ADAM: torch.optim.Adam with facenet's beta1 0.9, beta2 0.999, epsilon 0.1. TensorFlow adds epsilon to sqrt(v),
  torch to sqrt(v / (1 - beta2^t)): with so large an epsilon the early steps differ.
- Random crop: 96 px out of 108 (facenet: 160 out of 182, the same ratio within 1 %). Fixed image standardisation,
  (x - 127.5) / 128, is this toolkit's default input handling.
- Validation: on lfw_dir / pairs when set (cosine distance and mean subtraction are options of `evaluate`, not of
  the evaluation during training); facenet's held-out 5 % classification split is not reproduced.
"""
BASE_CONFIG = "../config.py"

optimizer = "ADAM"
softmax_lr = -1            # rates from the schedule file, like --learning_rate -1
learning_rate_schedule_file = "recipes/facenet_schedule_casia.txt"
softmax_epochs = 150       # the schedule's -1 stops training before epoch 91
weight_decay = 5e-4
lr_schedule = "exponential"  # tf.train.exponential_decay on top of the file's rate; factor 1.0: no change
learning_rate_decay_epochs = 100
learning_rate_decay_factor = 1.0
moving_average_decay = 0.9999
warmup_epochs = 0.0
softmax_batch_size = 90
softmax_label_smoothing = 0.0
augment_flip = True        # --random_flip
resize_size = 108          # --random_crop
eval_flip = True           # --lfw_use_flipped_images
eval_every_epochs = 5      # --validate_every_n_epochs 5
