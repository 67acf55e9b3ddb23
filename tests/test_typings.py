"""typings/ under every type checker users run (mypy, pyright, ty, pyrefly), and the mypy plugin's messages."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api as mypy_api

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TYPINGS = sorted((ROOT / "typings").glob("check_*.py"))

#: Where a checker reports a diagnostic: `typings/check_stubs.py:84:18: error[...]` (ty), `ERROR
#: typings/check_stubs.py:84:18-21: ...` (pyrefly).
_DIAGNOSTIC = re.compile(r"(?P<path>[\w./-]+\.py):(?P<line>\d+):")


def _rejected() -> set[tuple[str, int]]:
    """The lines a checker must reject: those ending in a mypy-style `# type: ignore[code]`."""
    return {
        (path.relative_to(ROOT).as_posix(), number)
        for path in TYPINGS
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "# type: ignore[" in line
    }


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False)


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")


def test_mypy_accepts_the_cases_and_rejects_each_marked_line() -> None:
    """mypy --strict with the plugin infers what typings/ asserts and rejects each marked line with its code (an
    unneeded `# type: ignore` fails, warn_unused_ignores)."""
    # The tests' stub modules (userdb, models, legacy) are imported by the cases, as users import theirs.
    result = _run("mypy", "typings", "tests/usercode/userdb.py", "tests/usercode/models.py", "tests/usercode/legacy.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pyright_accepts_the_cases_and_rejects_each_marked_line() -> None:
    """pyright in strict mode infers what typings/ asserts and rejects each marked line (an unneeded
    `# type: ignore` fails, reportUnnecessaryTypeIgnoreComment)."""
    _require("pyright")
    result = _run("pyright", "--pythonpath", sys.executable)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "command",
    [
        # `# type: ignore[code]` with mypy's codes does not silence ty (only its own codes do): each marked line
        # is reported, and nothing else. `# ty: ignore[...]` marks a limitation of ty's (docs/guide/static-typing.md).
        pytest.param(("ty", "check", "--python", sys.executable, "--output-format", "concise"), id="ty"),
        # Told to respect only its own `# pyrefly: ignore[...]`, which marks a limitation of pyrefly's.
        pytest.param(
            (
                *("pyrefly", "check", "--python-interpreter-path", sys.executable, "--output-format", "min-text"),
                *("--enabled-ignores", "pyrefly", "--summary=none"),
            ),
            id="pyrefly",
        ),
    ],
)
def test_checker_rejects_exactly_the_marked_lines(command: tuple[str, ...]) -> None:
    """ty and pyrefly report a diagnostic on every line mypy and pyright reject in typings/ and on no other line:
    each documented stub form is accepted, with what the cases assert inferred."""
    _require(command[0])
    result = _run(*command)
    assert "typings/check_stubs.py" in result.stdout, result.stdout + result.stderr  # it checked the cases
    found = {(m["path"], int(m["line"])) for m in _DIAGNOSTIC.finditer(result.stdout)}
    expected = _rejected()
    missed, extra = sorted(expected - found), sorted(found - expected)
    assert (missed, extra) == ([], []), result.stdout


_MISUSE = """
from pgdecor import procedure


@procedure
def get_user(id: int) -> int | None: ...


get_user("1")
get_user(ident=1)
"""


def test_mypy_plugin_names_the_stub_in_argument_errors(tmp_path: Path) -> None:
    """With the plugin, mypy's errors on a stub's call name the stub (`"get_user"`), not `"__call__" of "Stub"`."""
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\nplugins = pgdecor.mypy\n")
    (tmp_path / "app.py").write_text(_MISUSE)
    out, err, status = mypy_api.run(
        ["--config-file", str(tmp_path / "mypy.ini"), "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "app.py")]
    )
    assert status == 1, out + err
    errors = [line.split(": error: ", 1)[1] for line in out.splitlines() if ": error: " in line]
    assert errors == [
        'Argument 1 to "get_user" has incompatible type "str"; expected "int"  [arg-type]',
        'Unexpected keyword argument "ident" for "get_user"  [call-arg]',
    ], out
