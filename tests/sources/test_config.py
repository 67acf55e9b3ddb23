"""A `Database`'s options: listed once, in `DatabaseConfig`'s signature, and taken by its replica."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from pgdecor import Database
from pgdecor._sources.config import DatabaseConfig

#: A value other than the default for each option of `Database(...)`: `conninfo`, `replica` and the connections'
#: keyword arguments aside.
GIVEN: dict[str, Any] = {
    "min_size": 2,
    "max_size": 3,
    "timeout": 4.0,
    "idle_in_transaction_timeout": 5.0,
    "leak_timeout": 6.0,
    "prepare": False,
    "check": False,
    "replica_wait": 7.0,
    "replica_timeout": 8.0,
    "secret": "a secret of 16 characters or more",
    "slow_call": 9.0,
}


def test_database_takes_the_options_its_config_checks() -> None:
    """`Database(...)` takes exactly the options `DatabaseConfig` checks, in its order: none is listed twice."""
    assert inspect.signature(Database) == inspect.signature(DatabaseConfig)


def test_a_replica_takes_the_options_of_its_primary() -> None:
    """The replica's pools take every option of its primary's but the conninfo, and its sessions the primary's
    commit-token key and `replica_timeout`: an option added to `Database` reaches the replica without more."""
    options = inspect.signature(Database).parameters
    assert set(GIVEN) == {name for name, p in options.items() if p.kind is p.KEYWORD_ONLY} - {"replica"}
    db = Database("dbname=primary", replica="dbname=standby", application_name="app", **GIVEN)
    assert db.replica is not None
    assert db.replica._pools() == dataclasses.replace(db._pools(), conninfo="dbname=standby")
    assert db.replica.leak_timeout == db.leak_timeout
    primary, replica = db._settings(), db.replica._settings()
    assert (replica.tokens, replica.replica_timeout) == (primary.tokens, primary.replica_timeout)
    assert db.replica.replica is None
