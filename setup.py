"""Open SpineNet architecture search: RNN controller + REINFORCE, proxy RetinaNet, Ray."""

from setuptools import find_packages, setup

# Versions that install and work together on Python 3.11 (checked together on
# one machine; bump them together).
INSTALL_REQUIRES = [
    "absl-py==2.5.1",
    "numpy==2.4.6",
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "tf-keras==2.21.0",  # TensorFlow Probability 0.25 needs it beside Keras 3
    "tensorflow-probability==0.25.0",
    "ray==2.60.0",
    "pycocotools==2.0.11",
    "pyyaml==6.0.3",
    "matplotlib==3.11.2",
    "tensorboard==2.21.0",  # event files of the search (and to view them)
]

TEST_REQUIRES = [
    "pytest==9.2.0",
    "hypothesis==6.170.15",
    "ruff==0.17.5",
]

setup(
    name="spinenet-nas",
    version="0.1.0",
    description="Open, resumable SpineNet neural architecture search on Ray",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["nas*", "search_space*", "controller*", "proxy_trainer*", "experiments*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES},
    entry_points={
        "console_scripts": [
            "nas-search=nas.cli:run",
            "nas-train=nas.train_cli:run",
        ]
    },
)
