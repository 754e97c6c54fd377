"""How the published repositories' checkpoints are made: random weights for a reference model, and the files their
training scripts save (torch.save bytes, DataParallel's ``module.`` prefix, akamaster's legacy dict)."""
from __future__ import annotations

import io
import math

import torch
import torch.nn as nn


def randomized(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics (a fresh BN in eval mode is nearly the identity, which would hide a
    misplaced BN), scaled so logits stay O(1) through the depth; eval mode."""
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.0)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(1.0, 2.0)
            m.num_batches_tracked.fill_(7)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.data.normal_(0, 1.0 / math.sqrt(fan_in))
            if m.bias is not None:
                m.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def with_module_prefix(state: dict) -> dict:
    return {f"module.{k}": v for k, v in state.items()}


def akamaster_file(original: nn.Module, legacy: bool = True) -> bytes:
    """As its trainer.py saves: {'state_dict', 'best_prec1'} of a DataParallel model; the published files were saved
    before PyTorch 0.4.1 (legacy format, BatchNorm without num_batches_tracked)."""
    state = {k: v for k, v in with_module_prefix(original.state_dict()).items()
             if not (legacy and k.endswith("num_batches_tracked"))}
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "best_prec1": 91.78}, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()
