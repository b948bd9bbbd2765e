"""A sweep folder's jobs, read through the run folder (outputs/run_folder.py): which
folders are jobs, in job order, and what each one's overrides and summary.json say."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlrun.outputs import run_folder


@dataclass
class SweepJob:
    path: Path
    overrides: dict[str, str]
    summary: dict[str, Any] | None
    summary_error: str | None = None


def find_jobs(sweep_dir: str | Path) -> list[Path]:
    """The job folders of a sweep (those with .hydra/overrides.yaml), by job number."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    jobs = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and run_folder.started_with(p, run_folder.OVERRIDES_YAML) is not None
    ]
    return sorted(jobs, key=_job_order)


def differing_keys(overrides: Sequence[Mapping[str, str]]) -> list[str]:
    """Override keys whose value is not the same in every job, in order of appearance."""
    keys: dict[str, None] = {}
    for job in overrides:
        keys.update(dict.fromkeys(job))
    return [k for k in keys if len({job.get(k) for job in overrides}) > 1]


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """{key: value} of Hydra override strings: `+a.b=1` -> a.b: 1, `~a.b` -> a.b: ~."""
    out: dict[str, str] = {}
    for line in lines:
        text = str(line)
        if text.startswith("~"):
            key, _, value = text[1:].partition("=")
            out[key] = f"~{value}" if value else "~"
        else:
            key, _, value = text.lstrip("+").partition("=")
            out[key] = value
    return out


def _job_order(path: Path) -> tuple[int, int, str]:
    match = re.match(r"(\d+)(?:_|$)", path.name)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def job_label(path: Path) -> str:
    match = re.match(r"(\d+)(?:_|$)", path.name)
    return match.group(1) if match else path.name


def load_job(path: Path) -> SweepJob:
    """A job folder's overrides ({} when unreadable: the job is still reported) and summary."""
    job = SweepJob(
        path=path, overrides=parse_overrides(run_folder.read_overrides(path)), summary=None
    )
    try:
        job.summary = run_folder.read_summary(path)
    except FileNotFoundError:
        pass
    except Exception as err:
        job.summary_error = f"unreadable {run_folder.SUMMARY_JSON}: {err}"
    return job
