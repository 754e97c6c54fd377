"""Configs as plain data: frozen dataclasses to JSON-ready dicts and back.

A run's config is at once its cache key, its record in a result's provenance and, as a dict, the
form a background job receives; :func:`config_dict` and :func:`config_from_dict` are inverses.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from typing import Any, Sequence

from core.errors import ParameterError


def later_option(default: Any, choices: Sequence[Any] = ()) -> Any:
    """A config field added after results were keyed by its config: left out of :func:`config_dict` while it
    holds ``default``, so every key, record and resume state made before the option existed still matches."""
    return dataclasses.field(default=default, metadata={"later": True, "choices": tuple(choices)})


def one_of(choices: Sequence[Any], default: Any = dataclasses.MISSING) -> Any:
    """A config field that takes one of ``choices`` (its dataclass still checks the value): the command line's
    flag and the dashboard's selector offer them."""
    return dataclasses.field(default=default, metadata={"choices": tuple(choices)})


def field_default(config_type: type, name: str) -> Any:
    """The default of field ``name`` of the config dataclass ``config_type``: the one source of the defaults
    that the CLI's options and help texts state."""
    found = {f.name: f for f in dataclasses.fields(config_type)}[name]
    if not has_default(found):
        raise ParameterError(f"{config_type.__name__}.{name} has no default")
    return found.default if found.default is not dataclasses.MISSING else found.default_factory()


@functools.cache
def field_notes(config_type: type) -> dict[str, str]:
    """Each field's comment in the config's source (``steps: int = 7  # iterations``), by field name: the text
    that explains a field is written once, beside it, and the command line's help reads it there."""
    try:
        source = inspect.getsource(config_type).splitlines()
    except (OSError, TypeError):  # no source (a frozen build): the flags keep their defaults as help
        return {}
    names = {f.name for f in dataclasses.fields(config_type)}
    found = (re.match(r"\s+(\w+)\s*:[^#]*#\s*(.+)$", line) for line in source)
    return {m[1]: m[2] for m in found if m and m[1] in names}


@dataclasses.dataclass(frozen=True)
class Setting:
    """A field that :func:`configure` can set: its dotted ``path``, type, default and comment (:func:`field_notes`)."""

    path: str
    kind: Any
    default: Any
    note: str
    choices: tuple = ()  # the values it takes, where its field declares them (:func:`one_of`)

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    @property
    def scalar(self) -> type | None:
        """bool, int, float or str where the field holds one (or None); None for any other field (a tuple)."""
        kinds = [k for k in typing.get_args(self.kind) if k is not type(None)] if self.optional else [self.kind]
        return kinds[0] if len(kinds) == 1 and kinds[0] in (bool, int, float, str) else None

    @property
    def optional(self) -> bool:
        union = typing.get_origin(self.kind) in (typing.Union, types.UnionType)
        return union and type(None) in typing.get_args(self.kind)


def settings_of(config_type: type, base: Any = None, prefix: str = "") -> list[Setting]:
    """Every field of ``config_type`` that holds a value, nested configs' fields under their dotted paths; the
    defaults are ``base``'s where given (a nested config's default instance: its :func:`chosen` values, a derived
    one None), else the declared ones."""
    hints, notes, found = type_hints(config_type), field_notes(config_type), []
    given = chosen(base) if base is not None else {}
    for f in dataclasses.fields(config_type):
        default = given.get(f.name) if base is not None else (
            field_default(config_type, f.name) if has_default(f) else None)
        if dataclasses.is_dataclass(hints[f.name]):
            found += settings_of(hints[f.name], default, f"{prefix}{f.name}.")
        else:
            found.append(Setting(prefix + f.name, hints[f.name], default, notes.get(f.name, ""),
                                 f.metadata.get("choices", ())))
    return found


def has_default(found: dataclasses.Field) -> bool:
    return found.default is not dataclasses.MISSING or found.default_factory is not dataclasses.MISSING


def chosen(config: Any) -> dict[str, Any]:
    """A config's values as chosen: a field that its config derives from the others where it is None (an attack's
    budget from its name, a surface's radius from its threat) is left out where it holds the derived value, so
    that a config built from these with other settings derives it anew; a value chosen apart from that stays."""
    def derived(f: dataclasses.Field) -> bool:
        value = getattr(config, f.name)
        return f.default is None and value is not None and getattr(
            dataclasses.replace(config, **{f.name: None}), f.name) == value
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if not derived(f)}


def recorded_fields(config: Any) -> list[dataclasses.Field]:
    """The fields a config's dict holds: all but later options at their default."""
    return [f for f in dataclasses.fields(config)
            if not (f.metadata.get("later") and getattr(config, f.name) == f.default)]


def config_dict(config: Any, typed: bool = True) -> Any:
    """A JSON-ready form of a (nested) frozen dataclass config; each dataclass carries its ``__type__``
    (``typed=False``: plain dicts, as checkpoint metadata records a training config)."""
    if dataclasses.is_dataclass(config):
        kind = {"__type__": type(config).__qualname__} if typed else {}
        return {**kind, **{f.name: config_dict(getattr(config, f.name), typed) for f in recorded_fields(config)}}
    if isinstance(config, (list, tuple)):
        return [config_dict(v, typed) for v in config]
    return config


def config_from_dict(cls: type, d: dict) -> Any:
    """Rebuild a ``cls`` from :func:`config_dict`'s output (nested configs by their field types)."""
    if d.get("__type__", cls.__qualname__) != cls.__qualname__:
        raise ParameterError(f"expected a {cls.__qualname__} config, got {d['__type__']}")
    hints = type_hints(cls)
    return cls(**{f.name: _decode(hints[f.name], d[f.name]) for f in dataclasses.fields(cls) if f.name in d})


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """A class's resolved field types, once per class (resolving them dominates reading a stored config)."""
    return typing.get_type_hints(cls)


def _decode(kind: Any, value: Any) -> Any:
    if isinstance(value, dict) and "__type__" in value:
        options = [t for t in typing.get_args(kind) or (kind,) if dataclasses.is_dataclass(t)]
        match = next((t for t in options if t.__qualname__ == value["__type__"]), None)
        if match is None:
            raise ParameterError(f"a {value['__type__']} config does not fit a field of type {kind}")
        return config_from_dict(match, value)
    return tuple(_decode(Any, v) for v in value) if isinstance(value, list) else value


def configure(config_type: type, settings: dict[str, Any], base: Any = None) -> Any:
    """A ``config_type`` from its defaults (or ``base``) with ``settings`` applied: ``{"eps": 0.5}``, dotted
    paths for nested configs (``{"attack.eps": 0.5, "data.per_class": 20}``). A config whose fields have no
    defaults is built from the settings alone; validation is the dataclass's own. Without ``base`` the fields left
    unset take their declared defaults, so a default resolved from another field (a loss surface's ``radius``
    from its ``threat``, an attack's ``eps`` from its ``name``) is resolved from the settings; with one, its
    :func:`chosen` values."""
    hints, groups = typing.get_type_hints(config_type), {}
    for path, value in settings.items():
        head, _, rest = path.partition(".")
        if head not in hints:
            known = ", ".join(f.name for f in dataclasses.fields(config_type))
            raise ParameterError(f"{config_type.__name__} has no field {head!r}; its fields: {known}")
        groups.setdefault(head, {})[rest] = value
    values = {name: sub[""] if "" in sub else
              configure(_dataclass_of(hints[name]), sub, _current(base, config_type, name))
              for name, sub in groups.items()}
    if base is not None:  # a derived field of the base follows the settings (a new attack name, a new budget)
        return config_type(**{**chosen(base), **values})
    required = [f.name for f in dataclasses.fields(config_type) if not has_default(f) and f.name not in values]
    if required:
        raise ParameterError(f"{config_type.__name__} has no default for {', '.join(required)}: set "
                             f"{' and '.join(required)} (dotted below the field that holds it)")
    return config_type(**values)


def _dataclass_of(kind: Any) -> type:
    found = [t for t in typing.get_args(kind) or (kind,) if dataclasses.is_dataclass(t)]
    if not found:
        raise ParameterError(f"a field of type {kind} has no sub-fields to set")
    return found[0]


def _current(base: Any, config_type: type, name: str) -> Any:
    """The nested config that settings of ``name.*`` change: the base's, else the field's default (or None)."""
    if base is not None:
        return getattr(base, name)
    found = {f.name: f for f in dataclasses.fields(config_type)}[name]
    return field_default(config_type, name) if has_default(found) else None
