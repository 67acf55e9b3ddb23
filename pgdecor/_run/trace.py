"""OpenTelemetry: one CLIENT span per stub call (a call, a batch, a stream until it ends) and the
``db.client.operation.duration`` histogram, following the database semantic conventions, through
``opentelemetry-api`` when it is installed (``pip install 'pgdecor[otel]'``).

Without the package, or with ``PGDECOR_OTEL=off`` in the environment, nothing is done; with the API's default
(no-op) providers, a call checks that and does nothing more. Parameter values go on spans only with
``PGDECOR_OTEL_PARAMETERS=on`` (they may be personal data). A span is the current one while its statement runs, so
spans of psycopg's own instrumentation (or any tool that wraps its cursors) are its children; on such connections
calls go through cursors (see `_wire.wire.usable`), so that those tools see every call.
"""

from __future__ import annotations

import os
import re
from time import perf_counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgdecor._plan.statement import Statement

__all__ = ["Operation", "settings"]

try:
    from opentelemetry import context, metrics, trace
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind, StatusCode

    _CLIENT = SpanKind.CLIENT

    _NO_TRACING: tuple[type, ...] = (NoOpTracerProvider, ProxyTracerProvider)
    _installed = True
except ImportError:  # pragma: no cover - exercised where opentelemetry-api is not installed
    _installed = False
try:  # the global meter provider's stand-in until one is set; without it, the stand-in is used (it forwards)
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _MetersUnset
except ImportError:  # pragma: no cover - depends on opentelemetry-api
    _MetersUnset = ()  # type: ignore[assignment,misc]


def _flag(name: str, *, default: bool) -> bool:
    value = os.environ.get(name, "").lower()
    return default if not value else value not in ("0", "off", "no", "false")


#: Until when `recording` answers "no" without asking.
_quiet = [0.0]


class _Settings:
    """What the spans do; tests and services may set these at run time."""

    #: Whether calls are traced at all: opentelemetry-api is installed and ``PGDECOR_OTEL`` is not off.
    on = _installed and _flag("PGDECOR_OTEL", default=True)
    #: Whether spans carry the call's parameter values (``db.query.parameter.<name>``).
    parameters = _flag("PGDECOR_OTEL_PARAMETERS", default=False)
    #: The providers to use instead of the global ones (None: OpenTelemetry's global providers).
    tracer_provider: Any = None
    meter_provider: Any = None

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        _quiet[0] = 0.0  # the next call asks again (see `recording`)


settings = _Settings()

#: The histogram's buckets, in seconds, as the semantic conventions advise.
_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]

#: Provider → its tracer (or histogram) for pgdecor.
_tracers: dict[int, tuple[Any, Any]] = {}
_histograms: dict[int, tuple[Any, Any]] = {}

#: How long the absence of a global provider is taken for granted before asking again (asking costs more than a
#: call's whole span logic): a provider set at start-up is seen by the calls made 10 ms later at the most.
_RECHECK = 0.01


class _Global:
    """OpenTelemetry's global tracer (or meter) provider: None while none is set (asked again every `_RECHECK`
    seconds); once set it never changes, so it is kept."""

    __slots__ = ("_get", "_proxy", "_until", "provider")

    def __init__(self, get: Any, proxy: Any) -> None:
        self._get, self._proxy = get, proxy
        self.provider: Any = None
        self._until = 0.0

    def __call__(self) -> Any:
        if self.provider is not None:
            return self.provider
        now = perf_counter()
        if now < self._until:
            return None
        found = self._get()
        if isinstance(found, self._proxy):
            self._until = now + _RECHECK
            return None
        self.provider = found
        return found


if _installed:
    _global_tracers = _Global(trace.get_tracer_provider, ProxyTracerProvider)
    _global_meters = _Global(metrics.get_meter_provider, _MetersUnset)


def _tracer() -> Any:
    """pgdecor's tracer, or None while nothing would record spans (no provider, or the API's no-op one)."""
    return _made(settings.tracer_provider or _global_tracers(), _NO_TRACING, _tracers, _new_tracer)


def _histogram() -> Any:
    """pgdecor's ``db.client.operation.duration`` histogram, or None while nothing would record it."""
    return _made(settings.meter_provider or _global_meters(), NoOpMeterProvider, _histograms, _new_histogram)


def _made(provider: Any, no_op: Any, made: dict[int, tuple[Any, Any]], make: Any) -> Any:
    """What *make* makes from *provider* (once per provider), or None for none or a no-op one."""
    if provider is None or isinstance(provider, no_op):
        return None
    found = made.get(id(provider))
    if found is None or found[0] is not provider:
        found = made[id(provider)] = (provider, make(provider))
    return found[1]


def _new_tracer(provider: Any) -> Any:
    return trace.get_tracer("pgdecor", tracer_provider=provider)


def _new_histogram(provider: Any) -> Any:
    return metrics.get_meter("pgdecor", meter_provider=provider).create_histogram(
        "db.client.operation.duration",
        unit="s",
        description="Duration of database client operations.",
        explicit_bucket_boundaries_advisory=_BUCKETS,
    )


def recording() -> bool:
    """Whether a call's span or duration would be recorded now: the only cost of tracing when not, kept to a
    clock read by taking a "no" for granted for `_RECHECK` seconds (global providers are set once; a change of
    `settings` is seen by the next call)."""
    now = perf_counter()
    if now < _quiet[0]:
        return False
    if _tracer() is not None or _histogram() is not None:
        return True
    if settings.tracer_provider is None and settings.meter_provider is None:  # explicit ones are asked each time
        _quiet[0] = now + _RECHECK
    return False


#: What a query's summary names after its command: the first table it reads or writes.
_NAME = r'(?:"[^"]+"|[\w$]+)'
_TARGET = re.compile(rf"\b(?:FROM|INTO|UPDATE|JOIN)\s+({_NAME}(?:\.{_NAME})?)", re.IGNORECASE)


class Operation:
    """What one statement of a stub says on its spans: their name (``db.query.summary``) and attributes."""

    __slots__ = ("attributes", "name", "operation")

    def __init__(self, stub: str, statement: Statement | None, procedure: str | None) -> None:
        text = statement.numbered()[0] if statement is not None else ""
        verb = text.split(None, 1)[0].upper() if text else ("SELECT" if procedure else "")
        if procedure is not None:
            target: str | None = procedure
        else:
            found = _TARGET.search(text)
            target = found[1] if found else None
        #: ``db.operation.name``: the SQL command.
        self.operation = verb
        self.name = f"{verb} {target}" if target else verb or stub
        self.attributes: dict[str, Any] = {
            "db.system.name": "postgresql",
            "db.operation.name": verb,
            "db.query.summary": self.name,
            "code.function.name": stub,
        }
        if text:
            self.attributes["db.query.text"] = text
        if procedure is not None:
            self.attributes["db.stored_procedure.name"] = procedure


class Call:
    """One traced call: its span, current while the statement runs, and its start time for the histogram."""

    __slots__ = ("_start", "_token", "attributes", "operation", "span")

    def __init__(self, tracer: Any, operation: Operation, extra: dict[str, Any] | None) -> None:
        self.operation = operation
        self.attributes = {**operation.attributes, **extra} if extra else operation.attributes
        #: None when only the histogram records. A span the sampler dropped is still current while the statement
        #: runs, so that spans under it (psycopg's) are dropped alike.
        self.span = (
            None if tracer is None else tracer.start_span(operation.name, kind=_CLIENT, attributes=self.attributes)
        )
        self._token: Any = None if self.span is None else context.attach(trace.set_span_in_context(self.span))
        self._start = perf_counter()

    def rename(self, operation: Operation) -> None:
        """The statement turned out to be *operation* (a function's first call on a server resolves it)."""
        self.operation = operation
        self.attributes = {**self.attributes, **operation.attributes}
        if self.span is not None:
            self.span.update_name(operation.name)
            self.span.set_attributes(operation.attributes)

    def detach(self) -> None:
        """The statement has run: the span stays open (a stream's, until it ends) but is current no more."""
        if self._token is not None:
            context.detach(self._token)
            self._token = None

    def end(self, server: tuple[str | None, str | None, str | None] | None, error: BaseException | None) -> None:
        """End the span (and record the duration) with the server the call reached and its error, if any."""
        self.detach()
        duration = perf_counter() - self._start
        span = self.span
        attributes: dict[str, Any] = {}
        if server is not None:
            host, port, dbname = server
            attributes["db.namespace"] = dbname
            attributes["server.address"] = host
            if port:
                attributes["server.port"] = int(port)
        if error is not None:
            # A mapped error (`errors=`) keeps the SQLSTATE of the database error it stands for.
            sqlstate = getattr(error, "sqlstate", None) or getattr(error.__cause__, "sqlstate", None)
            if sqlstate:
                attributes["db.response.status_code"] = sqlstate
            attributes["error.type"] = sqlstate or f"{type(error).__module__}.{type(error).__qualname__}"
        if span is not None:
            if span.is_recording():
                if error is not None:
                    span.set_status(StatusCode.ERROR, str(error).partition("\n")[0])
                span.set_attributes(attributes)
            span.end()
        histogram = _histogram()
        if histogram is not None:
            keep = ("db.system.name", "db.operation.name", "db.query.summary")
            histogram.record(duration, {**{k: self.attributes[k] for k in keep}, **attributes})


def start(operation: Operation, extra: dict[str, Any] | None = None) -> Call:
    """A traced call of *operation* (see `recording`)."""
    return Call(_tracer(), operation, extra)


def parameters(names: tuple[str, ...], args: tuple[Any, ...]) -> dict[str, Any] | None:
    """The call's parameter values as span attributes, if the user opted in."""
    if not settings.parameters:
        return None
    return {f"db.query.parameter.{name}": _attribute(value) for name, value in zip(names, args, strict=False)}


def _attribute(value: Any) -> Any:
    return value if isinstance(value, (str, bool, int, float)) else repr(value)
