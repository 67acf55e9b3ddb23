# Generated from tests/plan/test_signature_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.plan.test_signature_async`, generated from it: see there."""

import datetime as dt
from typing import Annotated, Any

import psycopg
import pytest

from pgdecor import Arg, ArgumentError, SignatureError, UndefinedFunctionError, procedure, query, session
from tests.fix_db import Exec
from tests.usercode.userdb import User, add_user, get_user, set_email, users_by_domain


def test_missing_parameter_annotation_fails_at_decoration() -> None:
    """A parameter without annotation is refused when the module is imported, not at the first call."""
    with pytest.raises(SignatureError, match=r"\.find: parameter 'id' has no annotation; annotate it"):

        @procedure
        def find(id) -> int:  # type: ignore[no-untyped-def] # noqa: ANN001
            raise NotImplementedError


def test_missing_return_annotation_fails_at_decoration() -> None:
    """A stub must say what it returns."""
    with pytest.raises(SignatureError, match="no return annotation"):

        @procedure
        def find(id: int): ...  # type: ignore[no-untyped-def] # noqa: ANN202


def test_var_args_fail_at_decoration() -> None:
    """**kwargs never maps onto SQL arguments, nor does *args outside @procedure (where it means VARIADIC)."""
    with pytest.raises(SignatureError, match=r"parameter \*\*ids cannot be mapped"):

        @procedure
        def find(**ids: int) -> int: ...

    with pytest.raises(SignatureError, match=r"parameter \*ids cannot be mapped .*only @procedure maps \*args"):

        @query("SELECT 1")
        def find_all(*ids: int) -> int: ...


def test_unsupported_return_annotations_fail_at_decoration() -> None:
    """Return types pgdecor cannot produce are refused with the fix."""
    with pytest.raises(SignatureError, match=r"cannot be None; drop `\| None`"):

        @procedure
        def many() -> list[User] | None: ...

    with pytest.raises(SignatureError, match="use dict\\[str, Any\\] or a dataclass"):

        @procedure
        def weird() -> dict[int, str]: ...


def test_unsupported_parameter_type_fails_at_decoration() -> None:
    """A parameter type psycopg cannot send is refused at decoration."""

    class Opaque:
        pass

    with pytest.raises(SignatureError, match=r"parameter 'thing' is annotated .*Opaque, which pgdecor cannot send"):

        @procedure
        def keep(thing: Opaque) -> None: ...


def test_query_placeholder_without_parameter_fails_at_decoration() -> None:
    """Every %(name)s must be a parameter."""
    with pytest.raises(SignatureError, match=r"uses %\(idd\)s but the stub has no parameter 'idd'"):

        @query("SELECT * FROM users WHERE id = %(idd)s")
        def find(id: int) -> User: ...


def test_query_parameter_never_used_fails_at_decoration() -> None:
    """Every parameter must appear in the SQL."""
    with pytest.raises(SignatureError, match=r"parameter 'limit' is not used .* add %\(limit\)s"):

        @query("SELECT * FROM users WHERE id = %(id)s")
        def find(id: int, limit: int) -> User: ...


def test_query_positional_placeholder_fails_at_decoration() -> None:
    """Positional %s placeholders are refused: parameters are matched by name."""
    with pytest.raises(SignatureError, match="not of the form %\\(name\\)s"):

        @query("SELECT * FROM users WHERE id = %s")
        def find(id: int) -> User: ...


def test_query_literal_percent_is_written_double(users: str) -> None:
    """%% in the SQL is a literal percent sign."""

    @query("SELECT count(*) FROM users WHERE email LIKE '%%' || %(domain)s")
    def count_domain(domain: str) -> int: ...

    with session(users):
        assert count_domain("example.org") == 1


def test_a_repeated_placeholder_binds_the_same_argument(users: str) -> None:
    """One parameter may appear several times."""

    @query("SELECT %(n)s + %(n)s")
    def double(n: int) -> int: ...

    with session(users):
        assert double(21) == 42


def test_keyword_and_default_arguments_work_as_in_python(users: str) -> None:
    """Arguments bind positionally, by keyword, and from defaults."""
    with session(users):
        assert get_user(id=1) == get_user(1)
        assert users_by_domain("example.com") == users_by_domain(domain="example.com", limit=100)
        assert users_by_domain("example.org", limit=0) == []


def test_keyword_only_and_positional_only_parameters(users: str) -> None:
    """The stub's parameter kinds are kept exactly."""

    @query("SELECT %(a)s::int + %(b)s::int")
    def add(a: int, /, *, b: int = 1) -> int: ...

    with session(users):
        assert add(1) == 2
        assert add(1, b=5) == 6
    with pytest.raises(TypeError, match="positional-only"):
        add(a=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2), {}), ((1,), {"id": 1}), ((), {"idd": 1})],
    ids=["missing", "too-many", "twice", "unknown-keyword"],
)
def test_wrong_argument_counts_raise_pythons_own_type_error(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Missing, extra and unknown arguments fail with the message Python gives for the stub itself, at the call
    (an async stub's before anything is awaited)."""
    with pytest.raises(TypeError) as expected:
        get_user.__wrapped__(*args, **kwargs)  # type: ignore[attr-defined]
    with pytest.raises(TypeError) as got:
        _ = get_user(*args, **kwargs)
    assert str(got.value) == str(expected.value)


def test_argument_of_wrong_type_is_refused_before_sending(users: str) -> None:
    """ "1" for an int raises ArgumentError (a TypeError) naming the parameter; nothing reaches the server."""
    with session(users) as s:
        with pytest.raises(
            ArgumentError, match=r"tests\.usercode\.userdb\.get_user\(\): argument 'id' must be int, got str '1'"
        ):
            get_user("1")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            get_user(True)
        assert not s.borrowed  # the session never even borrowed a connection


def test_none_for_non_optional_parameter_is_refused(users: str) -> None:
    """None is accepted only where the annotation is Optional."""
    with session(users):
        with pytest.raises(ArgumentError, match="argument 'name' must be str, got NoneType None"):
            add_user(9, None)  # type: ignore[arg-type]
        set_email(1, None)
        assert get_user(1) == User(1, "ann", None)


def test_list_parameters_check_their_items(users: str) -> None:
    """`list[int]` is checked item by item and sent as an array."""

    @query("SELECT count(*) FROM users WHERE id = ANY(%(ids)s)")
    def count_ids(ids: list[int]) -> int: ...

    with session(users):
        assert count_ids([1, 3, 99]) == 2
        with pytest.raises(ArgumentError, match="argument 'ids' must be list\\[int\\]"):
            count_ids([1, "2"])  # type: ignore[list-item]


def test_a_str_argument_does_not_fit_a_date_parameter(pg_dsn: str, pg_exec: Exec) -> None:
    """A `str` is not silently cast to a date: the stub does not fit, and the error says why."""
    pg_exec("CREATE FUNCTION next_day(d date) RETURNS date LANGUAGE sql AS $$ SELECT d + 1 $$")

    @procedure
    def next_day(d: str) -> dt.date: ...

    @procedure("next_day")
    def next_day_typed(d: dt.date) -> dt.date: ...

    with session(pg_dsn):
        assert next_day_typed(dt.date(2024, 2, 28)) == dt.date(2024, 2, 29)
    with (
        pytest.raises(UndefinedFunctionError, match=r"'d' is str in the stub but date in the function"),
        session(pg_dsn),
    ):
        next_day("2024-02-28")


def test_hostile_strings_are_bound_not_interpolated(users: str, pg_exec: Exec) -> None:
    """Quotes and `; DROP TABLE` text are stored verbatim and nothing is dropped."""
    evil = "Robert'); DROP TABLE users; -- \" $$ %s %(x)s"
    with session(users):
        add_user(10, evil)
        set_email(10, evil)
    with session(users):
        assert get_user(10) == User(10, evil, evil)
    assert pg_exec("SELECT count(*) FROM users") == [(4,)]


def test_missing_function_raises_a_clear_error(users: str) -> None:
    """A stub naming no existing function says which, with what parameters, and how to fix it."""

    @procedure
    def get_usr(id: int) -> User | None: ...

    with pytest.raises(UndefinedFunctionError) as info, session(users):
        get_usr(1)
    message = str(info.value)
    assert f"{__name__}.test_missing_function_raises_a_clear_error.<locals>.get_usr" in message
    assert "no function or procedure get_usr" in message
    assert "(the stub passes: id int)" in message
    assert "@procedure('schema.name')" in message
    assert isinstance(info.value, LookupError)  # a pgdecor error, not one the server raised
    assert info.value.sqlstate == "42883"


def test_database_errors_keep_their_class_and_get_a_note(users: str) -> None:
    """A server error stays psycopg's class, with a note naming the stub and its SQL."""
    with pytest.raises(psycopg.errors.UniqueViolation) as info, session(users):
        add_user(1, "again")
    assert any(
        "tests.usercode.userdb.add_user" in n and "INSERT INTO users" in n for n in getattr(info.value, "__notes__", [])
    )


def test_schema_qualified_names_are_quoted(pg_dsn: str, pg_exec: Exec) -> None:
    """`@procedure("schema.name")` calls that schema's function, each part quoted."""
    pg_exec(
        'CREATE SCHEMA "Odd Schema"; CREATE FUNCTION "Odd Schema"."Hello"(who text) RETURNS text '
        "LANGUAGE sql AS $$ SELECT 'hello ' || who $$"
    )

    @procedure("Odd Schema.Hello")
    def hello(who: str) -> str: ...

    assert hello.sql is None  # composed at the first call, from what the server declares
    with session(pg_dsn):
        assert hello("you") == "hello you"
    assert hello.sql == 'SELECT "Odd Schema"."Hello"("who" => %b::pg_catalog.text)'
    pg_exec('DROP SCHEMA "Odd Schema" CASCADE')


def test_bad_procedure_names_fail_at_decoration() -> None:
    """A name with more than schema and function, or a quote left open, is refused."""
    for name in ("a.b.c", 'a."b', '"a"b', "a."):
        with pytest.raises(SignatureError, match="not a function name"):

            @procedure(name)
            def f() -> None: ...


def test_arguments_named_twice_or_in_a_query_fail_at_decoration() -> None:
    """Two parameters passing one argument, an `Arg` in a `@query` stub (whose placeholders name parameters) and an
    `Arg` that names nothing are refused, naming the stub, the parameters and the fix."""
    with pytest.raises(SignatureError, match=r"parameters 'from_' and 'frm' both pass the argument 'from'; give"):

        @procedure("f")
        def twice(from_: Annotated[int, Arg("from")], frm: Annotated[int, Arg("from")]) -> None: ...

    with pytest.raises(SignatureError, match=r"parameters 'x' and 'y' both pass the argument 'x'"):

        @procedure("f")
        def shadowed(x: int, y: Annotated[int, Arg("x")]) -> None: ...

    with pytest.raises(SignatureError, match=r"'from_' is annotated Arg\('from'\), .* write %\(from_\)s and drop"):

        @query("SELECT %(from_)s")
        def in_query(from_: Annotated[int, Arg("from")]) -> int: ...

    with pytest.raises(SignatureError, match=r"Arg\(''\): name the argument the parameter passes"):
        Arg("")


def test_forward_references_resolve_at_first_call(users: str) -> None:
    """A stub annotated with a class defined later (a string annotation) works once the class exists."""
    from tests.usercode import forward_stubs

    assert forward_stubs.get_later.sql is None
    with session(users):
        assert forward_stubs.get_later(1) == forward_stubs.Later(1, "ann")
    assert forward_stubs.get_later.sql == "SELECT id, name FROM users WHERE id = %b"


def test_stub_exposes_its_sql_and_metadata(users: str) -> None:
    """A decorated stub keeps its name and shows the SQL it sends (for @procedure, once resolved)."""

    @procedure("user_name")
    def name_of(id: int) -> str | None: ...

    assert name_of.sql is None
    with session(users):
        name_of(1)
    assert name_of.sql == 'SELECT "user_name"("id" => %b::integer)'
    assert set_email.sql == "UPDATE users SET email = %b WHERE id = %b"
    assert get_user.__name__ == "get_user"
    assert get_user.__qualname__ == "get_user"


def test_tracebacks_name_the_stub_and_show_the_generated_source() -> None:
    """A generated caller's frame says which stub it is, and its source line is there to read."""
    import traceback

    from pgdecor import NoSessionError

    with pytest.raises(NoSessionError) as info:
        get_user(1)
    frames = traceback.extract_tb(info.value.__traceback__)
    caller = next(f for f in frames if f.filename.startswith("<pgdecor generated"))
    assert (caller.filename, caller.name) == (
        "<pgdecor generated caller of tests.usercode.userdb.get_user>",
        "get_user",
    )
    assert caller.line is not None
    assert "_pgdecor_run" in caller.line
