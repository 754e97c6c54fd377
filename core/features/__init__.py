"""Feature datasets (App. C and F, after Ilyas et al. 2019): what a model's features say, as a training set.

* ``D_R`` / ``D_NR`` (Eq. A2): for each training image x (label y) an image x' of another class is moved by
  l2 steps (step 0.1, 1000 iterations, no eps bound, pixels kept in [0, 1]) until its penultimate activations
  match x's, ``min ||g(x) - g(x' + delta)||_2``; labelled y. From an adversarially trained source that is
  D_R, from a standard one D_NR.
* ``D_rand`` / ``D_det``: targeted l2-PGD examples of a standard model (eps 0.5, step 0.1, 100 iterations)
  towards t random (D_rand) or ``y + 1 mod K`` (D_det), labelled t.
* ``D_conflict``: D_det's attack started from D_R's images, so robust features say y, non-robust ones t.

D_det and D_conflict keep a tenth of their images out of training as a ``conflict`` split labelled y: a
model's accuracy there against y measures its reliance on robust features, against ``y + 1`` on
non-robust ones (Fig. 6 and A5), as the built-in dataset's own ``conflict`` split does.

A dataset is extracted once per (source weights, :class:`FeatureConfig`), batch by batch and resumable after a
kill, into ``<cache>/features/<id>/`` (float16 images, labels, metadata); ``load_dataset("features:<id>")``
and training read it by name, with the source dataset's real test split as its ``test`` split. The declared
experiment ``feature_dataset`` caches its metadata and sanity figures, so pages show them without the images.

Modules: :mod:`~core.features.config` (kinds, presets), :mod:`~core.features.extraction` (Eq. A2, the attacks,
the ``feature_dataset`` experiment), :mod:`~core.features.storage` (files; the ``features:`` data source),
:mod:`~core.features.training` (Table A5, ``feature_training``), :mod:`~core.features.cross_evaluation`
(Tables A3 / A4) and :mod:`~core.features.reliance` (``conflict_reliance``).
"""
from __future__ import annotations

from core.features.config import (ADVERSARIAL_KINDS, FEATURE_MATCHING, HOLDOUT_KINDS, KINDS, PRESETS, FeatureConfig,
                                  feature_config)
from core.features.cross_evaluation import (PAPER_NORMS, PAPER_TABLES, CrossEvaluation, cross_evaluation,
                                            cross_evaluation_requests, cross_table, table_kind,
                                            zoo_cross_requests)
from core.features.extraction import (FeatureDataset, check_source, dataset_id, ensure_dataset, extract,
                                      feature_dataset, match_features, other_class_partners, preview_images)
from core.features.reliance import SPREAD_FILE, RelianceConfig, SeedSpread, conflict_reliance_report, seed_spread
from core.features.storage import (Part, features_dir, list_feature_datasets, load_feature_dataset, read_meta,
                                   write_dataset)
from core.features.training import (FEATURES_PLACEHOLDER, TRAIN_PRESETS, FeatureTraining, FeatureTrainingConfig,
                                    feature_train_config, feature_training, trend_config, trend_requests)
from core.zoo import FEATURE_ARCH

__all__ = ["ADVERSARIAL_KINDS", "FEATURE_MATCHING", "HOLDOUT_KINDS", "KINDS", "PRESETS", "FeatureConfig",
           "feature_config", "PAPER_NORMS", "PAPER_TABLES", "CrossEvaluation", "cross_evaluation",
           "cross_evaluation_requests", "cross_table", "table_kind", "zoo_cross_requests", "FeatureDataset", "check_source", "dataset_id",
           "ensure_dataset", "extract", "feature_dataset", "match_features", "other_class_partners", "preview_images",
           "RelianceConfig", "SPREAD_FILE", "SeedSpread", "conflict_reliance_report", "seed_spread", "Part", "features_dir", "list_feature_datasets",
           "load_feature_dataset", "read_meta", "write_dataset", "FEATURES_PLACEHOLDER", "TRAIN_PRESETS",
           "FeatureTraining", "FeatureTrainingConfig", "feature_train_config", "feature_training", "trend_config", "trend_requests",
           "FEATURE_ARCH"]
