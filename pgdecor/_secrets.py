"""What pgdecor may show of a connection string: never its passwords, whether libpq can read it or not.

`masked` is a conninfo as a message shows it, each secret replaced by ``***``; `scrubbed` is other text about it
(an address read from it) with its secrets taken out; `explained` is libpq's own error about a conninfo it cannot
read, which may quote the whole string or any piece of it, showing only keywords. The secrets of a conninfo libpq
reads are its passwords and keys (``password``, ``sslpassword``, ``scram_client_key``, ...), found generously: in
a URI, everything between the user name's ``:`` and the last ``@``, so that a password with an ``@`` or a ``/``
written as it is stays hidden (`misread` tells such a URI, which libpq reads wrongly). In a conninfo libpq cannot
read, a mistyped keyword may hold the password: every value is a secret there, and only keywords are shown.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = ["MASK", "described", "explained", "masked", "misread", "scrubbed"]

MASK = "***"

_SECRET_KEYWORDS = ("password", "sslpassword", "scram_client_key", "scram_server_key", "oauth_client_secret")
_SECRET = "|".join(_SECRET_KEYWORDS)

_URI = re.compile(r"\s*postgres(?:ql)?://", re.IGNORECASE)
# The user name stops at the first ":"; the password runs to the last "@" of the string.
_USERINFO = re.compile(r"[^:@/?#]*:(?P<value>.*)@", re.DOTALL)
_URI_SECRET = re.compile(rf"[?&](?:{_SECRET})=(?P<value>[^&]*)")
_URI_PARAMETER = re.compile(r"[?&](?P<keyword>[^=&]*=)?(?P<value>[^&]*)")
_VALUE = r"(?P<value>(?:'(?:[^'\\]|\\.)*(?:'|\\?$)|\\.|[^\s'\\])+)"
# ASCII: libpq's spaces are C's, a no-break space is part of a value
_SECRET_PARAMETER = re.compile(rf"(?<![\w.])(?:{_SECRET})\s*=\s*{_VALUE}", re.DOTALL | re.ASCII)
# Every word of a conninfo libpq cannot read, a keyword's value or a word alone.
_WORD = re.compile(rf"(?P<keyword>[A-Za-z_]\w*\s*=\s*)?{_VALUE}", re.DOTALL | re.ASCII)
_QUOTED = re.compile(r'"([^"]*)"')
#: What libpq's own messages quote: "missing "=" after", "matching "]"", "(expected ":" or "/")".
_TEMPLATE = ("=", "]", ":", "/")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def described(value: object) -> str:
    """A value given where a conninfo was expected, for a message: its type, and its repr only when it cannot
    hold a password (None, a bool, a number); bytes or a URL object may."""
    if value is None or isinstance(value, (bool, int, float)):
        return f"{type(value).__qualname__} {value!r:.40}"
    return type(value).__qualname__


def masked(conninfo: str) -> str:
    """*conninfo* with each of its secrets replaced by ``***``."""
    shown, end = [], 0
    for start, stop in _spans(conninfo):
        shown += [conninfo[end:start], MASK]
        end = stop
    shown.append(conninfo[end:])
    return scrubbed("".join(shown), conninfo)


def scrubbed(text: str, conninfo: str) -> str:
    """*text* (an address read from *conninfo*, say) with every secret of *conninfo* replaced by ``***``."""
    secrets = sorted(_secrets(conninfo), key=len, reverse=True)
    if not secrets:
        return text
    # whole words only: a short secret is no reason to mangle the words it is a part of
    return re.sub("|".join(rf"(?<![^\W_]){re.escape(s)}(?![^\W_])" for s in secrets), MASK, text)


def explained(message: str, conninfo: str) -> str:
    """libpq's *message* about *conninfo*, which it cannot read, showing of what libpq quotes (a keyword, a piece
    of a value, the whole string) only keywords and *conninfo* masked: from the first other quoted piece to the
    last quote, ``"***"``."""
    shown = masked(conninfo)
    text, rest = [], message.replace(conninfo, shown)
    while (m := _QUOTED.search(rest)) is not None:
        piece = m[1]
        if piece == shown or piece in _TEMPLATE or piece in _keywords() or _shown_keyword(piece, shown):
            text.append(rest[: m.end()])
            rest = rest[m.end() :]
        else:
            text.append(f'{rest[: m.start()]}"{MASK}"')
            rest = rest[rest.rfind('"') + 1 :]
            break
    said = "".join([*text, rest])
    # whatever was quoted in a way not seen above (another language's quotes): a piece of a secret ends it all
    grams = {s[i : i + 4] for s in _secrets(conninfo) for i in range(max(len(s) - 3, 1))}
    return "libpq cannot read it" if any(g in said.replace(shown, "") for g in grams) else said


def _shown_keyword(piece: str, shown: str) -> bool:
    """Whether *piece* is a keyword the masked conninfo *shown* shows (one libpq does not know: a typo)."""
    return re.fullmatch(r"[A-Za-z_]\w*", piece) is not None and re.search(rf"\b{piece}\s*=", shown) is not None


def misread(conninfo: str, info: dict[str, Any]) -> bool:
    """Whether libpq, reading the URI *conninfo* as *info*, took a piece of its password for the host, port or
    database name (a ``/`` or a second ``@`` in it, not percent-encoded): its errors would then quote that piece."""
    uri = _URI.match(conninfo)
    if not uri or not _USERINFO.match(conninfo, uri.end()):
        return False
    port = str(info.get("port") or "")
    return "@" in str(info.get("host") or "") + str(info.get("dbname") or "") or not re.fullmatch(r"[\d,]*", port)


def _readable(conninfo: str) -> dict[str, str] | None:
    try:
        return {k: str(v) for k, v in conninfo_to_dict(conninfo).items()}
    except (psycopg.Error, UnicodeDecodeError):
        return None


@functools.cache
def _keywords() -> frozenset[str]:
    """The keywords this libpq knows: shown even where they stand alone, as libpq's errors name them."""
    return frozenset(o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults())


def _spans(conninfo: str, *, merge: bool = True) -> list[tuple[int, int]]:
    """Where *conninfo*'s secrets are written, in order (merged where they overlap)."""
    readable = _readable(conninfo) is not None
    found: list[tuple[int, int]] = []
    uri = _URI.match(conninfo)
    if uri:
        userinfo = _USERINFO.match(conninfo, uri.end())
        if userinfo:
            found.append(userinfo.span("value"))
        if readable:
            found += [m.span("value") for m in _URI_SECRET.finditer(conninfo)]
        else:
            parameters = _URI_PARAMETER.finditer(conninfo, uri.end())
            found += [m.span("value") for m in parameters if m["keyword"] or m["value"] not in _keywords()]
    elif readable:
        found += [m.span("value") for m in _SECRET_PARAMETER.finditer(conninfo)]
    else:
        found += _unreadable_spans(conninfo)
    for secret in _read_secrets(conninfo):  # wherever libpq found one written, whatever the patterns above saw
        found += [(m.start(), m.end()) for m in re.finditer(re.escape(secret), conninfo)]
    found = sorted(s for s in found if s[1] > s[0])
    if not merge:
        return found
    merged: list[tuple[int, int]] = []
    for start, stop in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((start, stop))
    return merged


def _unreadable_spans(conninfo: str) -> list[tuple[int, int]]:
    """In ``key=value`` form libpq cannot read: every value, every word alone but libpq's keywords, and whatever
    follows a secret up to the next keyword libpq knows (a password with a space and an ``=`` in it)."""
    found, after_secret = [], False
    for m in _WORD.finditer(conninfo):
        keyword = (m["keyword"] or "").rstrip("= \t\n\r\f\v")
        if keyword in _keywords():
            after_secret = keyword in _SECRET_KEYWORDS
            found.append(m.span("value"))
        elif after_secret:
            found.append(m.span())
        elif keyword or m["value"] not in _keywords():
            found.append(m.span("value"))
    return found


def _secrets(conninfo: str) -> set[str]:
    """The secrets of *conninfo* in every form a message may quote: as written, unquoted, decoded, and as libpq
    reads them."""
    found = set()
    uri = _URI.match(conninfo) is not None
    for start, stop in _spans(conninfo, merge=False):
        written = conninfo[start:stop]
        found.add(written)
        if uri:
            found.add(unquote(written))
        else:
            found.add(_ESCAPED.sub(r"\1", written.replace("'", "")))
    found.update(_read_secrets(conninfo))
    return {s for s in found if s}


def _read_secrets(conninfo: str) -> list[str]:
    """The secrets of *conninfo* as libpq reads them, if it can."""
    readable = _readable(conninfo) or {}
    return [readable[k] for k in _SECRET_KEYWORDS if readable.get(k)]
