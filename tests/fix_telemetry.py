"""The `telemetry` fixture: pgdecor's spans and duration histogram, recorded in memory by the OpenTelemetry SDK
for one test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pgdecor._run import trace as _trace


class Telemetry:
    """An SDK tracer and meter provider recording in memory, given to pgdecor for one test."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, *, ours: bool = True) -> list[ReadableSpan]:
        """The finished spans: pgdecor's (or the others)."""
        found = self.exporter.get_finished_spans()
        return [
            s
            for s in found
            if (s.instrumentation_scope is not None and s.instrumentation_scope.name == "pgdecor") == ours
        ]

    def durations(self) -> list[Any]:
        """The data points of the ``db.client.operation.duration`` histogram."""
        data = self.reader.get_metrics_data()
        assert data is not None
        metrics = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
        (duration,) = [m for m in metrics if m.name == "db.client.operation.duration"]
        assert duration.unit == "s"
        return list(duration.data.data_points)

    def texts(self) -> list[str]:
        """Everything recorded, as text: each span's name, attributes, status and events, each data point's
        attributes."""
        found = [
            f"{s.name} {dict(s.attributes or {})} {s.status.description} {[dict(e.attributes or {}) for e in s.events]}"
            for s in self.exporter.get_finished_spans()
        ]
        data = self.reader.get_metrics_data()
        if data is not None:
            points = [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
                      for p in m.data.data_points]  # fmt: skip
            found += [str(dict(p.attributes or {})) for p in points]
        return found


@pytest.fixture
def telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    """pgdecor's spans and histogram, recorded in memory for the test (parameter values not recorded)."""
    found = Telemetry()
    monkeypatch.setattr(_trace.settings, "on", True)
    monkeypatch.setattr(_trace.settings, "parameters", False)
    monkeypatch.setattr(_trace.settings, "tracer_provider", found.tracer_provider)
    monkeypatch.setattr(_trace.settings, "meter_provider", found.meter_provider)
    yield found
    found.tracer_provider.shutdown()
    found.meter_provider.shutdown()
