"""The two training stages the shared loop drives (the interface: stages/base.py's Stage): softmax pretraining and
triplet training, each built ready by stages/factory.py's build_stage."""
