"""Import dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1.dat) into our YAML network.

serialization.py reads dlib's binary serialization, network.py walks the parsed anet_type into a YAML layer
list plus a state dict (and holds a plain-torch reference forward), chip.py reproduces dlib's 150x150 face chip.
"""
