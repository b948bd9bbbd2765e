"""Atomic file writes: a killed run never leaves a half-written file behind.

Every write goes to a temp file that is renamed over the target, so a killed process leaves
the old file or the new one, never a torn one. `durable=True` (checkpoints) also syncs the
file to the disk before the rename, so that it survives a crash of the machine too; the
small files rewritten every epoch (CSV rows, summary.json) skip that, as they can be
written again from the checkpoint.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from dlrun.errors import DlrunError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temp files are created private (0600); the renamed file gets the usual permissions.
FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], durable: bool = True) -> None:
    """Write through `write(fileobj)` into a temp file beside `path`, then rename over it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise DlrunError(f"Cannot write {path}: {err.strerror or err}.") from err
    if hasattr(os, "fchmod"):  # not on Windows, where the mode is the user's anyway
        os.fchmod(fd, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a vanished folder: the old file stays whole
        Path(tmp).unlink(missing_ok=True)
        raise DlrunError(
            f"Cannot write {path}: {err.strerror or err}. The previous version of the file, "
            f"if any, is intact; free some space or choose another output folder."
        ) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_link(source: Path, target: Path) -> None:
    """`target` becomes the same file as `source` (a hard link, renamed into place), or a
    copy where the file system has no hard links. A later rename over `source` leaves
    `target` as it was."""
    link = target.with_name(f".{target.name}.link")
    try:
        link.unlink(missing_ok=True)
        os.link(source, link)
        os.replace(link, target)
    except OSError:
        link.unlink(missing_ok=True)
        atomic_write(target, lambda handle: handle.write(Path(source).read_bytes()))


def append_text(path: str | Path, text: str) -> None:
    """Add `text` at the end of `path` in one write: an epoch's few rows of a CSV file,
    without writing its earlier rows again. A kill can at worst cut the last line short,
    which `read_csv_rows` leaves out."""
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
    except OSError as err:
        raise DlrunError(
            f"Cannot add to {path}: {err.strerror or err}. The rows already written are intact; "
            f"free some space or choose another output folder."
        ) from err


def atomic_write_text(path: str | Path, text: str, durable: bool = True) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), durable)


def atomic_write_json(path: str | Path, data: Any, durable: bool = True) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n", durable)


def csv_text(rows: Sequence[Mapping[str, Any]], fieldnames: Sequence[str] | None = None) -> str:
    """Rows as CSV text: floats written with repr (they read back exactly), None as empty."""
    buffer = io.StringIO()
    names = list(fieldnames) if fieldnames is not None else list(rows[0])
    writer = csv.DictWriter(buffer, fieldnames=names, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(value) for key, value in row.items()})
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file that holds an object (summary.json); ValueError for anything else."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def read_csv_rows(path: str | Path) -> list[dict[str, Any]]:
    """A CSV written by csv_text, back as rows: numbers as int or float, empty cells None.
    A last line without its newline, what a kill left of an append, is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = csv.DictReader(io.StringIO(text, newline=""))
    return [{k: _parse(v) for k, v in row.items()} for row in rows]


def _parse(text: str | None) -> Any:
    if text is None or text == "":
        return None
    # int() takes neither character, and most of a run's numbers have one: "0.25", "1e-05".
    kinds = (float,) if "." in text or "e" in text else (int, float)
    for kind in kinds:
        try:
            return kind(text)
        except ValueError:
            pass
    return text
