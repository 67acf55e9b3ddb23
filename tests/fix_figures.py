"""The figures tests measure (soaks, fault runs), printed at the end of the run under "measured": a reader sees
the number itself, not only a green dot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

FIGURES: list[str] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a line of measured figures for the end-of-run summary."""
    return lambda line: FIGURES.append(f"{request.node.name}: {line}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("measured")
        for line in FIGURES:
            terminalreporter.write_line(line)
