"""Common corruptions (CIFAR-10-C) and accuracy under them: the transforms, the published arrays as a data
source, and the ``corruption`` experiment (Sec. 3.2)."""
from core.corruptions.cifar10c import PUBLISHED, cifar10c_dir, load_cifar10c
from core.corruptions.evaluation import (CorruptionConfig, corruption_cell, corruption_gallery, corruption_sweep,
                                         summary, sweep_requests)
from core.corruptions.transforms import (CORRUPTIONS, NOT_PROVIDED, SEVERITIES, CorruptionDef, corrupt,
                                         corruption_def, quantized)

__all__ = ["CORRUPTIONS", "NOT_PROVIDED", "PUBLISHED", "SEVERITIES", "CorruptionConfig", "CorruptionDef",
           "cifar10c_dir", "corrupt", "corruption_cell", "corruption_def", "corruption_gallery", "corruption_sweep",
           "load_cifar10c", "quantized", "summary", "sweep_requests"]
