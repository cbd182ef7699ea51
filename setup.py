"""xmodal: cross-sensor distillation of frozen 2D / vision-language teachers into 3D students.

All dependency ranges live here, in one place. Install for a CPU machine with
``pip install -e .[cpu,dev]`` (what ``make test`` does) or for CUDA 12 with ``.[cu120]``.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "([^"]+)"', Path("xmodal/__init__.py").read_text()).group(1)

# torch and torchvision must come as a matching pair: torchvision 0.29 pairs with torch 2.14/2.15
# (the registry's CUDA builds, which also run on a CPU). The CPU-only torch file some machines
# carry does not load the registry's torchvision (`operator torchvision::nms does not exist`).
install_requires = [
    "torch>=2.14,<2.16",
    "torchvision>=0.29,<0.30",
    "numpy>=1.26,<2",  # nuscenes-devkit holds numpy below 2
    "nuscenes-devkit>=1.1.11,<1.3",
    "open-clip-torch>=3.0,<4",
    "gsplat>=1.5.3,<1.6",
    "scikit-image>=0.24,<0.27",
    "scipy>=1.11,<2",
    "pillow>=10,<14",
    "matplotlib>=3.8,<4",
    "pyyaml>=6,<7",
    "tqdm>=4.66,<5",
    "tensorboard>=2.16,<3",
]

extras_require = {
    # CPU machines: spconv's CPU wheel (xmodal patches its CPU backward) and the small open3d.
    "cpu": ["spconv>=2.3.8,<2.4", "open3d-cpu>=0.19,<0.21"],
    # CUDA 12 machines: spconv-cu120 and the full open3d. gsplat JIT-compiles its CUDA at first use.
    "cu120": ["spconv-cu120>=2.3.8,<2.4", "open3d>=0.19,<0.21"],
    "dev": ["pytest>=8,<10", "pytest-timeout>=2.3,<3"],
}

setup(
    name="xmodal",
    version=version,
    description="Cross-sensor distillation: 2D and vision-language teachers -> LiDAR, BEV, "
    "Gaussian-field, IMU and audio students",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["xmodal", "xmodal.*"]),
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={"console_scripts": ["xmodal=xmodal.cli.main:main"]},
    license="Apache-2.0",
)
