"""core.gallery: the pure attack-and-predict function, its cached report and the grid image."""
from __future__ import annotations

import torch

from core.attacks import paper_spec
from core.cache import MISSING, ResultCache
from core.experiments import RunContext
from core.gallery import GalleryConfig, GalleryReport, adversarial_gallery, gallery_grid, gallery_report
from core.images import decode_images, encode_images, png_bytes


def test_gallery_shapes_ranges_and_predictions(trained_pair, eval_batch):
    model = trained_pair["bn"].model
    x, y = eval_batch[0][:12], eval_batch[1][:12]
    g = adversarial_gallery(model, x, y, paper_spec("pgd_linf", eps=4 / 255, steps=5))
    assert g.adversarial.shape == x.shape and g.clean.shape == x.shape
    assert g.adversarial.min() >= 0 and g.adversarial.max() <= 1
    assert g.perturbation.abs().max() <= 4 / 255 + 1e-6
    for pred, conf in ((g.clean_pred, g.clean_conf), (g.adv_pred, g.adv_conf)):
        assert pred.shape == y.shape and pred.dtype == torch.int64
        assert ((conf > 0) & (conf <= 1)).all()
    with torch.no_grad():
        assert torch.equal(model(g.adversarial).argmax(1), g.adv_pred)


def test_eps_zero_leaves_images_and_predictions_unchanged(trained_pair, eval_batch):
    x, y = eval_batch[0][:8], eval_batch[1][:8]
    g = adversarial_gallery(trained_pair["none"].model, x, y, paper_spec("fgsm", eps=0.0))
    assert torch.equal(g.adversarial, x) and torch.equal(g.adv_pred, g.clean_pred)


def test_report_is_cached_and_cached_only_misses_first(trained_pair, tmp_path):
    ckpt, cache = trained_pair["bn"], ResultCache(tmp_path)
    config = GalleryConfig(paper_spec("pgd_l2", steps=3))  # default data: one image per class of its own dataset
    assert gallery_report(ckpt, config, RunContext(cache, cached_only=True)) is MISSING
    first = gallery_report(ckpt, config, RunContext(cache))
    assert first.dataset == "builtin" and len(first.labels) == 10
    assert gallery_report(ckpt, config, RunContext(cache, cached_only=True)) == first


def test_grid_png_puts_each_image_in_its_cell():
    import io

    import numpy as np
    from PIL import Image

    def report(seed: int) -> GalleryReport:
        g = torch.Generator().manual_seed(seed)
        images = {k: encode_images(torch.rand(3, 3, 4, 4, generator=g)) for k in ("clean", "adversarial", "perturbation")}
        return GalleryReport(**images, linf=[], labels=[], clean_pred=[], clean_conf=[], adv_pred=[], adv_conf=[])

    reports = {"bn": report(0), "none": report(1)}
    grid = np.asarray(Image.open(io.BytesIO(png_bytes(gallery_grid(reports, rows=2, zoom=2, gap=1)))))
    assert grid.shape == (2 * 8 + 1, 5 * 8 + 4, 3)  # 2 rows; clean + 2 x (adversarial, perturbation) columns
    cell = (slice(9, 17), slice(3 * 9, 3 * 9 + 8))  # row 1, column 3: the second model's adversarial image
    assert (grid[cell] == decode_images(reports["none"].adversarial)[1].repeat(2, 0).repeat(2, 1)).all()
    assert (grid[8] == 255).all() and (grid[:, 8] == 255).all()  # white gaps
