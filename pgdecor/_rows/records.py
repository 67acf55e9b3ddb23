"""Row types read once: the fields a dataclass, NamedTuple, TypedDict, pydantic model, attrs class, msgspec Struct
or plain class is built from (their names, annotations, defaults, and how they are passed), which `layouts`
matches result columns against and `json_load` JSON objects. A field's name here is the column it is filled from; a
dataclass field's is its own, or the one its metadata names
(``field(metadata={"column": "http://postgrest.com/foo"})``), for columns no Python name can spell.

A field is filled from the column (or JSON key) of its name. A pydantic field's is its name as the class declares
it, whatever its alias: an alias names the field in the model's outside data (an API's JSON), and pgdecor passes
the value to the model under it. An attrs field's is the name its ``__init__`` takes (its alias: a private
``_secret`` is filled from ``secret``). The model libraries are imported only to read a class of theirs: pgdecor
depends on none of them.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import dataclass
from typing import Any

from typing_extensions import is_typeddict

from pgdecor._annotations import bare, column_name, is_namedtuple, is_nullable, is_structured, model_library
from pgdecor._errors import SignatureError

__all__ = ["Field", "Record", "record_of"]


@dataclass(frozen=True)
class Field:
    #: The column (or JSON key) it is filled from.
    name: str
    annotation: Any
    nullable: bool
    has_default: bool
    #: Passed by keyword only (dataclass kw_only fields, keyword-only __init__ parameters).
    kw_only: bool
    #: The keyword ``__init__`` takes it by: its name, or a pydantic alias.
    keyword: str
    #: The attribute instances hold it in (what is sent of them as JSON): its name, or an attrs private name.
    attribute: str


@dataclass(frozen=True)
class Record:
    """How to build one row type from named values."""

    cls: type
    fields: tuple[Field, ...]
    #: Built from a dict of all columns (TypedDict, or a class taking **kwargs).
    by_mapping: bool
    extra_allowed: bool
    #: The constructor checks the values (pydantic, attrs validators and converters, post-init hooks): what it
    #: raises gets a note naming the stub and the columns.
    validating: bool = False


_RECORDS: dict[type, Record] = {}


def record_of(cls: type, hints: dict[str, Any] | None = None) -> Record:
    """Read the fields a record class is built from; *hints* are its resolved annotations (when not given,
    they are read once per class)."""
    if hints is None:
        record = _RECORDS.get(cls)
        if record is None:
            record = _RECORDS[cls] = _read_record(cls, None)
        return record
    return _read_record(cls, hints)


def _read_record(cls: type, hints: dict[str, Any] | None) -> Record:
    library = model_library(cls)
    if library == "pydantic":
        return _pydantic_record(cls)
    if library == "attrs":
        return _attrs_record(cls, hints)
    if library == "msgspec":
        return _struct_record(cls)
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True) if hints is None else hints
        fields = tuple(
            _field(
                column_of(cls, f),
                hints.get(f.name, Any),
                has_default=f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
                kw_only=bool(getattr(f, "kw_only", False)),
                keyword=f.name,
                attribute=f.name,
            )
            for f in dataclasses.fields(cls)
            if f.init
        )
        validating = hasattr(cls, "__pydantic_validator__")  # a pydantic dataclass
        return Record(cls, fields, by_mapping=False, extra_allowed=False, validating=validating)
    if is_namedtuple(cls):
        hints = typing.get_type_hints(cls, include_extras=True) if hints is None else hints
        defaults = getattr(cls, "_field_defaults", {})
        fields = tuple(
            _field(n, hints.get(n, Any), has_default=n in defaults, kw_only=False)
            for n in cls._fields  # type: ignore[attr-defined]
        )
        return Record(cls, fields, by_mapping=False, extra_allowed=False)
    if is_typeddict(cls):
        hints = typing.get_type_hints(cls, include_extras=True) if hints is None else hints
        required = getattr(cls, "__required_keys__", frozenset(hints))
        fields = tuple(_field(n, t, has_default=n not in required, kw_only=True) for n, t in hints.items())
        return Record(dict, fields, by_mapping=True, extra_allowed=False)
    init = cls.__init__  # type: ignore[misc]
    hints = typing.get_type_hints(init, include_extras=True) if hints is None else hints
    params = list(inspect.signature(cls).parameters.values())
    fields = tuple(
        _field(p.name, hints.get(p.name, Any), has_default=p.default is not p.empty, kw_only=p.kind is p.KEYWORD_ONLY)
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    extra = any(p.kind is p.VAR_KEYWORD for p in params)
    return Record(cls, fields, by_mapping=extra, extra_allowed=extra)


def _pydantic_record(cls: Any) -> Record:
    if not cls.__pydantic_complete__:  # a forward reference pydantic could not resolve when the class was made
        cls.model_rebuild()
    config = cls.model_config
    by_alias = config.get("validate_by_alias", True)
    fields = tuple(
        _field(
            name,
            _pydantic_annotation(info.annotation),
            has_default=not info.is_required(),
            kw_only=True,
            keyword=_pydantic_keyword(name, info) if by_alias else name,
        )
        for name, info in cls.model_fields.items()
    )
    extra = config.get("extra") == "allow"
    return Record(cls, fields, by_mapping=extra, extra_allowed=extra, validating=True)


def _pydantic_annotation(annotation: Any) -> Any:
    """What the column of a field annotated *annotation* must be: Any for a type that tells pydantic how to make it
    (``SecretStr``, ``HttpUrl``, ``EmailStr``, a type of the user's), which the model makes from the column's value,
    whatever it is, NULL included; the annotation for any other."""
    tp, _ = bare(annotation)
    if hasattr(tp, "__get_pydantic_core_schema__") and not is_structured(tp):
        return Any
    return annotation


def _pydantic_keyword(name: str, info: Any) -> str:
    """The keyword a pydantic model takes a field by: its validation alias or alias, when it is a name."""
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    if isinstance(alias, str):
        return alias
    for choice in getattr(alias, "choices", ()):  # AliasChoices: any one of them does
        if isinstance(choice, str):
            return choice
    return name


def _attrs_record(cls: Any, hints: dict[str, Any] | None) -> Record:
    from attr import NOTHING  # noqa: PLC0415 - only for a class of attrs's, which is installed then

    hints = typing.get_type_hints(cls, include_extras=True) if hints is None else hints
    init_hints: dict[str, Any] | None = None
    validating = hasattr(cls, "__attrs_post_init__")
    fields: list[Field] = []
    for a in cls.__attrs_attrs__:
        if not a.init:
            continue
        keyword = getattr(a, "alias", None) or a.name.lstrip("_")  # attrs before 22.2 had no alias
        annotation = hints.get(a.name, a.type if a.type is not None and not isinstance(a.type, str) else Any)
        if a.converter is not None:
            # The column is what the converter takes: attrs annotates __init__ with its parameter's type.
            if init_hints is None:
                try:
                    init_hints = typing.get_type_hints(cls.__init__, include_extras=True)
                except (NameError, TypeError):
                    init_hints = {}
            annotation = init_hints.get(keyword, Any)
        validating = validating or a.validator is not None or a.converter is not None
        has_default = a.default is not NOTHING
        kw_only = bool(a.kw_only)
        fields.append(_field(keyword, annotation, has_default=has_default, kw_only=kw_only, attribute=a.name))
    return Record(cls, tuple(fields), by_mapping=False, extra_allowed=False, validating=validating)


def _struct_record(cls: Any) -> Record:
    import msgspec  # noqa: PLC0415 - only for a Struct, so msgspec is installed

    positional = getattr(cls, "__match_args__", ())  # a Struct's fields that __init__ takes by position, in order
    infos = sorted(msgspec.structs.fields(cls), key=lambda f: f.name not in positional)
    fields = tuple(_field(f.name, f.type, has_default=not f.required, kw_only=f.name not in positional) for f in infos)
    validating = hasattr(cls, "__post_init__")
    return Record(cls, fields, by_mapping=False, extra_allowed=False, validating=validating)


def _field(
    name: str,
    annotation: Any,
    *,
    has_default: bool,
    kw_only: bool,
    keyword: str | None = None,
    attribute: str | None = None,
) -> Field:
    return Field(name, annotation, is_nullable(annotation), has_default, kw_only, keyword or name, attribute or name)


def column_of(cls: type, field: dataclasses.Field[Any]) -> str:
    """The column a dataclass field is filled from: ``metadata["column"]``, else its name."""
    column = column_name(field)
    if not isinstance(column, str) or not column:
        msg = (
            f"{cls.__module__}.{cls.__qualname__}.{field.name}: metadata column={column!r} does not name a column; "
            f'give the column\'s name as a non-empty str (`field(metadata={{"column": "name"}})`)'
        )
        raise SignatureError(msg)
    return column
