"""The Python types of the round-trip tests' composite, enum and domain cases (tests/rows/test_types.py for calls,
tests/run/test_copy.py for COPY), shared so that both exercise the same classes."""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        pass


class Mood(StrEnum):
    SAD = "sad"
    OK = "ok"
    HAPPY = "happy"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@dataclass
class Point:
    x: int
    y: int


@dataclass
class Shape:
    name: str
    mood: Mood
    corners: list[Point]
    center: Point | None
