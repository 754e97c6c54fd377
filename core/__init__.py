"""NormScope core: a UI-free engine reproducing Benz, Zhang & Kweon (ICCV 2021),
*Batch Normalization Increases Adversarial Vulnerability and Decreases Adversarial
Transferability: A Non-Robust Feature Perspective*.

Tensor contract everywhere: images are NCHW float tensors in [0, 1]; input normalization
is the first layer of every model, so attacks work in pixel space.
"""
from core._version import CODE_VERSION

# The modules that declare experiments (and register data sources): importing the package imports them, so the
# registries are full wherever any part of core is used. A new experiment's module is added here, once.
from core import corruptions, features, frequency, gallery, robustness, surface, transfer  # noqa: E402,F401  (isort: skip)

__all__ = ["CODE_VERSION"]
