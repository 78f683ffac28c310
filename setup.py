"""Open SpineNet architecture search: RNN controller + REINFORCE, proxy RetinaNet, Ray."""

from setuptools import find_packages, setup

# Compatible ranges, so that the project installs beside a TensorFlow, Ray or other dependency that is
# already there in another patch release: each range holds the tested release's minor version (major,
# for PyYAML and absl-py). constraints.txt is the exact set, everything they pull in included, that
# was installed and tested together on Python 3.10, 3.11, 3.12 and 3.13: `pip install -c constraints.txt
# -e .` reproduces it. Move a range and constraints.txt together; .ci/run installs and tests every
# supported Python. Keras, NumPy and Matplotlib have newer releases than Python 3.10 can have, so on
# 3.10 their ranges hold the newest release there (Keras 3.12, NumPy 2.2, Matplotlib 3.10).
INSTALL_REQUIRES = [
    "absl-py>=2.5,<3",
    "numpy>=2.4,<2.5; python_version >= '3.11'",
    "numpy>=2.2,<2.3; python_version < '3.11'",
    "tensorflow>=2.21,<2.22",
    "keras>=3.15,<3.16; python_version >= '3.11'",
    "keras>=3.12,<3.13; python_version < '3.11'",  # the last Keras for Python 3.10
    "tf-keras>=2.21,<2.22",  # TensorFlow Probability 0.25 needs it beside Keras 3
    "tensorflow-probability>=0.25,<0.26",
    "ray>=2.60,<2.61",
    "pycocotools>=2.0.11,<2.1",
    "pyyaml>=6.0,<7",
    "matplotlib>=3.11,<3.12; python_version >= '3.11'",
    "matplotlib>=3.10,<3.11; python_version < '3.11'",
    "tensorboard>=2.21,<2.22",  # event files of the search (and to view them)
    # TensorFlow Probability imports distutils, which Python 3.12 dropped; setuptools brings it back
    # (84.2 does; 65.5, which a Python 3.11 venv starts with, does not on 3.12 and 3.13).
    "setuptools>=84; python_version >= '3.12'",
]

TEST_REQUIRES = [
    "pytest>=9.2,<10",
    "pytest-xdist>=3.8,<4",  # the suite runs in two processes (pytest.ini)
    "hypothesis>=6.170,<7; python_version >= '3.11'",
    "hypothesis>=6.168,<7; python_version < '3.11'",  # 6.169 needs Python 3.11
    "ruff>=0.17.5,<0.18",  # its rules change between minor releases
    "build>=1.6,<2",  # to build the wheel (tests/smoke/smoke_install.sh VERSION wheel)
]

setup(
    name="spinenet-nas",
    version="0.1.0",
    description="Open, resumable SpineNet neural architecture search on Ray",
    python_requires=">=3.10,<3.14",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ],
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
