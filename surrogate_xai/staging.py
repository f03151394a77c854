"""Output files written in full before any of them appears, and runs that died mid-way finished
or cleaned up by the next one.

Every output (a results file, each report, an audit report) is first written, flushed and
fsynced into a hidden staging folder ``.sxai-staging-<id>/`` next to its final path (same file
system, so the final rename is atomic), then renamed into place. A staging folder holds:

``lock``
    held with ``flock`` by the run that writes it: the lock ends with the process, however
    it ends (even SIGKILL), so a folder whose lock can be taken belongs to a dead run;
``NNNNN.<name>``
    the staged files;
``manifest.json``
    written once everything is staged, just before the run's point of no return (the audit
    records' commit, or the first rename when there is no store): the final path of each
    file, and the record ids and store the files belong to.

:func:`recover` (run before a command writes into a folder) deals with folders left by dead
runs: without a manifest the run never got to its outputs, and the folder is removed; with one,
the outputs are moved into place when their records are in the store (or when the run recorded
nothing), and removed when the records were never committed. So a crash at any point leaves
nothing a user has to find and delete by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .exceptions import OutputWriteError
from .output_files import output_mode, write_target

PREFIX = ".sxai-staging-"
_MANIFEST = "manifest.json"
_FORMAT = "surrogate-xai/staged-outputs"
# Temporary files of releases before staging folders: ".<name>.<8 random>.tmp" (mkstemp).
_OLD_TEMPORARY = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _message(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@dataclass
class _Stage:
    """One staging folder and the lock that says its run is alive."""

    folder: Path
    lock: IO[str]
    files: list[tuple[str, Path]] = field(default_factory=list)  # (staged name, final target)

    @classmethod
    def open(cls, parent: Path) -> _Stage:
        folder = parent / f"{PREFIX}{uuid.uuid4().hex}"
        folder.mkdir()
        lock = (folder / "lock").open("w")
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        return cls(folder, lock)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)
        self.lock.close()


class StagedFiles:
    """Output files staged in full, then renamed into place together.

    :meth:`stage` writes each file into a staging folder next to its final path and fsyncs
    it; :meth:`seal` writes the manifest (what :func:`recover` needs to finish the run if it
    dies from here on); :meth:`commit` renames them all; :meth:`discard` removes what was
    staged. Until :meth:`commit`, nothing the user can see has changed. Every error names the
    user's path, never a staged one.

    Permissions and links follow :mod:`surrogate_xai.output_files`: an existing file keeps its mode,
    a new one gets ``0666 & ~umask``, a symlink's target is replaced (not the link), and a
    device or pipe is refused.
    """

    def __init__(self) -> None:
        self._stages: dict[Path, _Stage] = {}
        self._given: dict[Path, Path] = {}  # final target -> the path as the user gave it

    def stage(self, path: Path, text: str) -> None:
        target = write_target(path)
        parent = target.parent if target.parent != Path("") else Path(".")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            mode = output_mode(target)
            stage = self._stages.get(parent)
            if stage is None:
                stage = self._stages[parent] = _Stage.open(parent)
            name = f"{len(stage.files):05d}.{target.name}"
            staged = stage.folder / name
            stage.files.append((name, target))
            self._given[target] = path
            with staged.open("w", encoding="utf-8", newline="\n") as fh:
                os.chmod(staged, mode)
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise OutputWriteError(f"{path}: {_message(exc)}") from exc

    def seal(self, record_ids: Sequence[str] | None = None, store: str | None = None) -> None:
        """Write each staging folder's manifest: from here on a dead run's files are finished
        by :func:`recover` if ``record_ids`` are in ``store`` (or if there are none)."""
        for stage in self._stages.values():
            manifest = {
                "format": _FORMAT,
                "version": 1,
                "store": store,
                "record_ids": None if record_ids is None else list(record_ids),
                "files": [[name, str(target)] for name, target in stage.files],
            }
            path = stage.folder / _MANIFEST
            try:
                with path.open("w", encoding="utf-8") as fh:
                    json.dump(manifest, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                _fsync_folder(stage.folder)
            except OSError as exc:
                raise OutputWriteError(f"{stage.folder.parent}: {_message(exc)}") from exc

    def commit(self) -> list[Path]:
        """Rename every staged file into place; returns the final paths (as given).

        Every rename is attempted even when one fails (after the audit records are committed
        each output that can be written must be), then the failures are reported together:
        :class:`OutputWriteError` naming each output that was not written and why.
        """
        done: list[Path] = []
        failed: list[str] = []
        for stage in self._stages.values():
            for name, target in stage.files:
                given = self._given[target]
                try:
                    if target.is_dir():
                        raise IsADirectoryError(21, "is a folder, not a file")
                    os.replace(stage.folder / name, target)
                except OSError as exc:
                    failed.append(f"{given} ({_message(exc)})")
                    continue
                done.append(given)
            _fsync_folder(stage.folder.parent)
        self.discard()
        if failed:
            shown = "; ".join(failed[:3]) + (
                f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
            )
            written = f"; the other {len(done)} outputs were written" if done else ""
            raise OutputWriteError(f"not written: {shown}{written}")
        return done

    def discard(self) -> None:
        for stage in self._stages.values():
            stage.remove()
        self._stages = {}
        self._given = {}


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a staging folder: a crash or an error part-way
    leaves the previous file (or none), never half of one; an error names ``path``."""
    recover(write_target(path).parent)
    staged = StagedFiles()
    try:
        staged.stage(path, text)
        staged.seal()
        staged.commit()
    finally:
        staged.discard()
    return path


#: ``(store, record_ids) -> committed?``: True, False, or None when it cannot be told.
CommitCheck = Callable[[str, list[str]], bool | None]


@dataclass
class Recovered:
    """What :func:`recover` did with the staging folders of dead runs."""

    moved: int = 0  # outputs of runs whose records were committed, moved into place
    removed: int = 0  # staged files of runs that never committed, removed
    left: list[Path] = field(default_factory=list)  # folders whose store could not be asked

    def merge(self, other: Recovered) -> None:
        self.moved += other.moved
        self.removed += other.removed
        self.left.extend(other.left)

    def describe(self) -> list[str]:
        """Lines for the terminal (none when there was nothing to do)."""
        lines = []
        if self.moved:
            lines.append(
                f"recovered: {self.moved} outputs of an interrupted run whose records were "
                "committed were moved into place"
            )
        if self.removed:
            lines.append(f"cleaned: {self.removed} staged files of an interrupted run removed")
        lines.extend(
            f"left: {p} holds outputs of an interrupted run whose audit store could not be "
            "checked; run sxai again with the same --store to finish it"
            for p in self.left
        )
        return lines


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    return data


def _recover_one(folder: Path, committed: CommitCheck | None) -> Recovered:
    done = Recovered()
    try:
        lock = (folder / "lock").open("a")
    except OSError:
        return done
    with lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return done  # a live run is writing it
        manifest = _manifest(folder)
        if manifest is None:  # the run died before its outputs were complete
            done.removed += sum(1 for p in folder.iterdir() if p.name not in ("lock", _MANIFEST))
        else:
            ids = manifest.get("record_ids")
            verdict: bool | None = True  # a run without records had reached its renames
            if ids is not None:
                verdict = None if committed is None else committed(str(manifest.get("store")), ids)
            if verdict is None:
                done.left.append(folder)
                return done
            for name, target in manifest.get("files") or []:
                staged = folder / str(name)
                if not staged.is_file():
                    continue  # renamed before the run died
                if not verdict:
                    done.removed += 1
                    continue
                with contextlib.suppress(OSError):
                    os.replace(staged, target)
                    done.moved += 1
    with contextlib.suppress(OSError):
        shutil.rmtree(folder)
    return done


def recover(folder: Path, committed: CommitCheck | None = None) -> Recovered:
    """Finish or remove what dead runs left in ``folder``'s staging folders.

    ``committed`` tells whether a run's records were committed to its store; without it, the
    folders of runs that recorded into a store are left (and listed), everything else is done.
    """
    done = Recovered()
    try:
        found = [p for p in Path(folder).glob(f"{PREFIX}*") if p.is_dir()]
    except OSError:
        return done
    for stage in found:
        done.merge(_recover_one(stage, committed))
    return done


def remove_old_temporaries(folder: Path, names: set[str]) -> int:
    """Remove the temporary files that releases before staging folders left next to the
    outputs ``names`` of ``folder`` when they were killed (``.<name>.<8 random>.tmp``)."""
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    for p in entries:
        match = _OLD_TEMPORARY.fullmatch(p.name)
        if match and match.group(1) in names and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed
