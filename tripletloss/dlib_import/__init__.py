"""Import dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1.dat) into our YAML network.

serialization.py reads dlib's binary serialization; network.py parses the .dat into layers, walks them into a
YAML layer list + parameters and holds a plain-torch reference forward; export.py writes the YAML and the
checkpoint (`python -m tripletloss import-dlib`). The face chip that network expects (template dlib_chip_150)
is tripletloss.prepare.chip; dlib's landmark and model files are found by tripletloss.prepare.landmarks.
"""
