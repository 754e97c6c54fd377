"""core.images: the uint8 codec of cached results and the display mapping of perturbations."""
from __future__ import annotations

import torch

from core.images import amplify, decode_images, encode_images


def test_amplify_maps_zero_to_grey_and_keeps_sign():
    delta = torch.zeros(2, 3, 4, 4)
    delta[0, 0, 0, 0], delta[0, 1, 0, 0], delta[1, 2, 1, 1] = 0.01, -0.005, -0.02
    a = amplify(delta)
    assert a[0, 0, 0, 0] == 1.0 and a[0, 1, 0, 0] == 0.25 and a[1, 2, 1, 1] == 0.0
    assert a[0, 2, 3, 3] == 0.5 and a.min() >= 0 and a.max() <= 1


def test_image_encoding_round_trips_to_uint8():
    x = torch.rand(3, 3, 5, 7)
    arr = decode_images(encode_images(x))
    assert arr.shape == (3, 5, 7, 3) and arr.dtype.name == "uint8"
    assert torch.allclose(torch.from_numpy(arr.copy()).permute(0, 3, 1, 2).float() / 255, x, atol=1 / 255)
