"""Run folders: unique even when two runs start in the same second; resume reuses one."""

from __future__ import annotations

from dlrun.outputs.naming import run_dir


def test_same_second_runs_get_distinct_folders(tmp_path):
    fresh = str(tmp_path / "outputs" / "2026-01-01" / "12-00-00_lenet_sgd")
    first, second, third = (run_dir(fresh, None) for _ in range(3))
    assert first == fresh
    assert second == f"{fresh}_2" and third == f"{fresh}_3"
    assert all(
        (tmp_path / "outputs" / "2026-01-01" / name).is_dir()
        for name in ("12-00-00_lenet_sgd", "12-00-00_lenet_sgd_2")
    )


def test_resume_continues_in_the_run_folder(tmp_path):
    run = tmp_path / "old_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    fresh = str(tmp_path / "new")
    assert run_dir(fresh, str(run)) == str(run)
    assert run_dir(fresh, str(run / "checkpoints" / "last.pt")) == str(run)
    assert run_dir(fresh, str(run / "checkpoints")) == str(run)
    assert run_dir(fresh, str(tmp_path / "missing")) == fresh  # the run then fails clearly
