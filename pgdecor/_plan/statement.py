"""What one call sends: a `Statement`, its SQL (psycopg placeholders) and how each of its parameters is taken
from the tuple of arguments the compiled caller packs (`pick`), converted where the value must be sent otherwise.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from pgdecor._errors import ArgumentError
from pgdecor._rows.json_dump import NotJsonError

__all__ = ["Pick", "Statement", "pick"]

Pick = Callable[[tuple[Any, ...]], Any]


@dataclass(frozen=True)
class Statement:
    """What one call sends."""

    sql: str
    #: How to take each parameter from the argument tuple.
    picks: tuple[Pick, ...]
    #: True when the parameters are the arguments as they are (no reordering or conversion).
    direct: bool
    #: True when the statement returns one value that becomes the whole return annotation (a function
    #: returning json, an array, a composite value), rather than rows mapped onto it.
    value: bool = False
    #: The argument index of each parameter, when every parameter is an argument as it is.
    indices: tuple[int, ...] | None = None
    #: The arguments → the parameters, made from the above.
    params: Callable[[tuple[Any, ...]], tuple[Any, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _params_function(self.picks, self.direct, self.indices))

    def numbered(self) -> tuple[str, list[str], list[bool]]:
        """The SQL with PostgreSQL's ``$n`` placeholders, as the server prepares it; each placeholder's format
        (``b``, ``s`` or ``t``); and whether the SQL casts it (``%b::integer``)."""
        numbers = itertools.count(1)
        found = [m for m in _PLACEHOLDER.finditer(self.sql) if m[1] != "%"]
        numbered = _PLACEHOLDER.sub(lambda m: "%" if m[1] == "%" else f"${next(numbers)}", self.sql)
        return numbered, [m[1] for m in found], [self.sql.startswith("::", m.end()) for m in found]


#: The placeholders of the SQL pgdecor composes (psycopg's, ``%%`` a literal ``%``).
_PLACEHOLDER = re.compile(r"%(%|[bst])")


def _params_function(
    picks: tuple[Pick, ...], direct: bool, indices: tuple[int, ...] | None
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    if direct:
        return lambda args: args
    if indices is not None and len(indices) > 1:
        return itemgetter(*indices)
    if indices is not None and indices:
        (index,) = indices
        return lambda args: (args[index],)
    return lambda args: tuple([pick(args) for pick in picks])


def pick(stub: str, source: int | str, adapter: Callable[[Any], Any] | None, name: str) -> Pick:
    """How to take one parameter from the arguments: by position, or as an attribute of ``self`` (args[0]); then
    converted by *adapter*, which raises `ArgumentError` naming the parameter for a value it cannot send."""
    get: Pick
    if isinstance(source, int):
        get = itemgetter(source)
    else:
        attribute = attrgetter(source)

        def get(args: tuple[Any, ...]) -> Any:
            try:
                return attribute(args[0])
            except AttributeError:
                msg = (
                    f"{stub}(): the SQL needs {source!r}, which is not a parameter of the stub, so it is taken "
                    f"from self.{source}, but {type(args[0]).__qualname__} has no such attribute"
                )
                raise ArgumentError(msg) from None

    if adapter is None:
        return get

    def converted(args: tuple[Any, ...]) -> Any:
        value = get(args)
        try:
            return adapter(value)
        except NotJsonError as err:
            msg = f"{stub}(): argument {name!r} {err}; nothing was sent to the server"
        raise ArgumentError(msg)

    return converted
