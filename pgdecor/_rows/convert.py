"""Value conversions psycopg does not do by itself, but for JSON's (`json_load`, `json_dump`): an enum label
becomes the annotated `Enum` member and a member is sent as its label; a dict bound for hstore is sent as hstore
text; a list is converted item by item.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from psycopg.types.hstore import BaseHstoreDumper

from pgdecor._annotations import bare

Convert = Callable[[Any], Any]

JSON_OIDS = frozenset({114, 3802})


def enum_loader(cls: type[enum.Enum]) -> Convert:
    """Label → member, by value (string-valued enums) or else by name."""
    by_label = {enum_label(m): m for m in cls}

    def load(label: Any) -> Any:
        try:
            return by_label[label]
        except KeyError:
            from pgdecor._errors import MappingError  # noqa: PLC0415 - errors import nothing from here; keep it that way

            msg = f"the label {label!r} is not a member of {cls.__qualname__} (members: {', '.join(by_label)})"
            raise MappingError(msg) from None

    return load


def enum_label(member: enum.Enum) -> str:
    return member.value if isinstance(member.value, str) else member.name


def enum_param(value: Any) -> Any:
    return enum_label(value) if isinstance(value, enum.Enum) else value


_hstore_dumper = BaseHstoreDumper(dict)


def hstore_param(value: Any) -> Any:
    if value is None:
        return None
    dumped = _hstore_dumper.dump(value)
    assert dumped is not None
    return bytes(dumped).decode()


def list_of(convert: Convert) -> Convert:
    """Apply *convert* to each non-NULL item of a list."""
    return lambda value: None if value is None else [None if v is None else convert(v) for v in value]


def is_enum(tp: Any) -> bool:
    tp, _ = bare(tp)
    return isinstance(tp, type) and issubclass(tp, enum.Enum)
