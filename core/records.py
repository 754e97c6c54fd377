"""Results as typed records: each experiment's result is a frozen dataclass, stored as JSON like the configs.

An experiment's compute returns its record (the fields it measured); the experiment adds where it came from
(:class:`Record`'s provenance: the checkpoint, the config, the code version and the dataset) and caches
:meth:`Record.to_dict`. Readers get the record back (:meth:`Record.from_dict`), so a result is read by attribute,
checked by type, and its fields are listed in one place::

    @dataclass(frozen=True, kw_only=True)
    class FourierHeatmap(Record):
        error: list[list[float]]
        n: int

The stored layout is the flat dict it always was (provenance keys beside the measured ones), so results cached
before records existed read as records, and the CLI's JSON is unchanged.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from core.config import config_dict, config_from_dict
from core.errors import NormScopeError

R = TypeVar("R", bound="Record")


class RecordError(NormScopeError):
    """A stored result that does not fit its record type (cached by a version that stored other fields)."""


@dataclass(frozen=True)
class Source:
    """The checkpoint a result was computed on."""

    name: str
    sha256: str
    arch: str
    norm: str
    dataset: str

    @classmethod
    def of(cls, checkpoint: Any) -> "Source":
        """A loaded checkpoint's (:class:`core.checkpoints.Checkpoint`) identity."""
        return cls(checkpoint.name, checkpoint.sha256, checkpoint.spec.arch, checkpoint.spec.norm, checkpoint.dataset)


@dataclass(frozen=True, kw_only=True)
class Record:
    """What every result records of how it was made; the experiment fills it in (None until then)."""

    checkpoint: Source | None = None
    config: Any = None  # the experiment's config dataclass, as keyed (``dataset="auto"`` resolved)
    code_version: str | None = None
    dataset: str | None = None  # the dataset of the images, for experiments that read a test split

    def to_dict(self) -> dict:
        """The JSON-ready form (the cache's and the CLI's): every field, provenance left out where unset."""
        stored = {f.name: config_dict(getattr(self, f.name), typed=False) for f in dataclasses.fields(self)}
        stored["config"] = config_dict(self.config)
        return {k: v for k, v in stored.items() if not (k in PROVENANCE and v is None)}

    def measured(self) -> dict:
        """What the experiment measured, JSON-ready: every field but the provenance."""
        return {k: v for k, v in self.to_dict().items() if k not in PROVENANCE}

    @classmethod
    def from_dict(cls: type[R], stored: dict, config_type: type | None = None) -> R:
        """The record of a stored result (``config_type``: its config's type, to read the config back typed);
        a :class:`RecordError` where the stored fields do not fit."""
        values = {f.name: stored[f.name] for f in dataclasses.fields(cls) if f.name in stored}
        try:
            if values.get("checkpoint") is not None:
                values["checkpoint"] = Source(**values["checkpoint"])
            if config_type is not None and values.get("config") is not None:
                values["config"] = config_from_dict(config_type, values["config"])
            return cls(**values)
        except (TypeError, NormScopeError) as e:
            raise RecordError(f"a stored {cls.__name__} does not fit its fields ({e})") from None


PROVENANCE = tuple(f.name for f in dataclasses.fields(Record))


def is_record_type(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Record) and kind is not Record
