"""Stubs of the tests of replicas: notes written on the primary, read (``readonly=True``) from a streaming standby
once it has replayed them; both kinds."""

from __future__ import annotations

from pgdecor import query


@query("INSERT INTO notes VALUES (%(id)s, %(body)s)")
def add_note(id: int, body: str) -> None: ...


@query("SELECT body FROM notes WHERE id = %(id)s", readonly=True)
def note(id: int) -> str | None: ...


@query("SELECT pg_is_in_recovery()", readonly=True)
def on_standby() -> bool: ...


@query("INSERT INTO notes VALUES (%(id)s, %(body)s)")
async def aadd_note(id: int, body: str) -> None: ...


@query("SELECT body FROM notes WHERE id = %(id)s", readonly=True)
async def anote(id: int) -> str | None: ...


@query("SELECT pg_is_in_recovery()", readonly=True)
async def aon_standby() -> bool: ...
