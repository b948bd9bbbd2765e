"""Bad input through the real command: a clear message, a non-zero exit, no finished run."""

from __future__ import annotations

import json

import pytest
from conftest import SMOKE, run_dlrun, run_folders


def assert_failed_cleanly(result, *phrases: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    for phrase in phrases:
        assert phrase in output, f"{phrase!r} not in:\n{output}"
    return output


def assert_no_finished_run(workdir):
    for folder in run_folders(workdir):
        assert not (folder / "summary.json").exists(), f"{folder} looks like a finished run"


def test_unknown_model_lists_the_options(workdir):
    result = run_dlrun(*SMOKE, "model=lenett", cwd=workdir)
    assert_failed_cleanly(result, "model=lenett", "Did you mean model=lenet?", "mlp")
    assert_no_finished_run(workdir)


def test_missing_data_says_where_it_looked_and_what_to_do(workdir):
    result = run_dlrun("dataset=mnist", "trainer=smoke", "dataset.root=nowhere", cwd=workdir)
    output = assert_failed_cleanly(result, "MNIST was not found", "dataset.download=true")
    assert "nowhere/MNIST/raw" in output
    assert result.returncode == 2
    assert_no_finished_run(workdir)


def test_data_root_comes_from_the_environment(workdir):
    result = run_dlrun("dataset=mnist", "trainer=smoke", cwd=workdir, env={"DLRUN_DATA": "envroot"})
    assert_failed_cleanly(result, "envroot/MNIST/raw")


def test_wrong_type_names_the_key(workdir):
    result = run_dlrun(*SMOKE, "trainer.epochs=abc", cwd=workdir)
    assert_failed_cleanly(result, "trainer.epochs", "abc")
    assert_no_finished_run(workdir)


def test_misspelt_key_names_the_closest_real_key(workdir):
    result = run_dlrun(*SMOKE, "trainer.epoch=3", cwd=workdir)
    output = assert_failed_cleanly(result, "trainer.epoch=3", "Did you mean trainer.epochs?")
    assert "To append to your config" not in output
    assert result.returncode == 1
    result = run_dlrun(*SMOKE, "+trainer.epoch=3", cwd=workdir)
    assert_failed_cleanly(result, "no key 'epoch'", "Did you mean trainer.epochs?")
    result = run_dlrun(*SMOKE, "model=mlp", "model.hiden=[8]", cwd=workdir)
    assert_failed_cleanly(result, "model.hiden=[8]", "Did you mean model.hidden?")
    assert_no_finished_run(workdir)


@pytest.mark.parametrize(
    ("argument", "closest"),
    [
        ("experiment=lenet_fashon", "experiment=lenet_fashion"),
        ("hparams_search=optuma", "hparams_search=optuna"),
        ("regularizer=[l2,dropot]", "regularizer=dropout"),
        ("optimizer=sgd,adm", "optimizer=adam"),
    ],
)
def test_an_unknown_option_of_any_group_names_the_closest(workdir, argument, closest):
    result = run_dlrun(*SMOKE, argument, cwd=workdir)
    assert_failed_cleanly(result, argument, f"Did you mean {closest}?")
    assert result.returncode == 1
    assert not (workdir / "outputs").exists()  # stopped before Hydra made a run folder


def test_invalid_choice_lists_allowed_values(workdir):
    result = run_dlrun(*SMOKE, "model.activation=relux", cwd=workdir)
    assert_failed_cleanly(result, "relux", "sigmoid", "relu")


def test_out_of_range_value_is_refused(workdir):
    result = run_dlrun(*SMOKE, "trainer.batch_size=0", cwd=workdir)
    assert_failed_cleanly(result, "trainer.batch_size=0", ">= 1")
    assert_no_finished_run(workdir)


def test_resume_from_nowhere_is_refused(workdir):
    result = run_dlrun(*SMOKE, "trainer.resume=no/such/run", cwd=workdir)
    assert_failed_cleanly(result, "trainer.resume=no/such/run", "checkpoint")
    assert_no_finished_run(workdir)


def test_unknown_monitor_is_refused_before_training(workdir):
    result = run_dlrun(*SMOKE, "trainer.monitor=test_accuracy", cwd=workdir)
    assert_failed_cleanly(result, "trainer.monitor=test_accuracy", "test_acc")
    assert "epoch 1/" not in result.stdout
    assert_no_finished_run(workdir)


def test_drop_last_that_leaves_no_batch_is_refused(workdir):
    result = run_dlrun(*SMOKE, "trainer.drop_last=true", "trainer.batch_size=1000", cwd=workdir)
    assert_failed_cleanly(result, "trainer.batch_size=1000", "drop_last")


def test_an_output_folder_that_cannot_be_made_is_refused(workdir):
    (workdir / "outputs").write_text("a file where the output folder should be")
    result = run_dlrun(*SMOKE, cwd=workdir)
    assert_failed_cleanly(result, "Cannot create the run folder", "hydra.run.dir")
    assert result.returncode == 2


def test_resuming_a_run_of_another_model_is_refused(workdir):
    first = run_dlrun(*SMOKE, "trainer.epochs=1", cwd=workdir)
    assert first.returncode == 0, first.stderr
    (folder,) = run_folders(workdir)
    result = run_dlrun(*SMOKE, "model=mlp", f"trainer.resume={folder}", cwd=workdir)
    refused = "a resume cannot change them: model.activation: sigmoid in the run, relu now"
    assert_failed_cleanly(result, refused, "model.name: lenet in the run, mlp now")
    assert result.returncode == 2


def test_a_failed_write_keeps_the_old_file_whole(tmp_path):
    import errno

    from dlrun.errors import DlrunError
    from dlrun.outputs.io import atomic_write, atomic_write_text

    path = tmp_path / "metrics.csv"
    atomic_write_text(path, "epoch,loss\n1,0.5\n")

    def disk_full(handle):
        handle.write(b"epoch,lo")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DlrunError, match="No space left on device"):
        atomic_write(path, disk_full)
    assert path.read_text() == "epoch,loss\n1,0.5\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temp file left


def test_a_checkpoint_that_cannot_be_written_fails_the_run_with_its_reason(workdir):
    (workdir / "outputs").mkdir()
    (workdir / "outputs" / "checkpoints").write_text("a file where the folder should be")
    result = run_dlrun(*SMOKE, "trainer.epochs=3", "hydra.run.dir=outputs", cwd=workdir)
    output = assert_failed_cleanly(result, "Cannot write", "checkpoints/last.pt")
    # Written on a thread of its own, the failed write of epoch 1 stops the run at epoch 2's.
    assert "epoch 3/3" not in output


def test_a_row_cut_short_by_a_kill_is_left_out_and_the_file_rewritten(tmp_path):
    from dlrun.outputs.io import read_csv_rows
    from dlrun.outputs.run_folder import RunFolder

    folder = RunFolder(tmp_path)
    for epoch in (1, 2):
        folder.add_epoch({"epoch": epoch, "loss": 0.5 / epoch}, {"epoch": epoch}, [])
    assert (tmp_path / "metrics.csv").read_text() == "epoch,loss\n1,0.5\n2,0.25\n"
    with (tmp_path / "metrics.csv").open("a") as handle:
        handle.write("3,0.1")  # the start of epoch 3's row, then a SIGKILL
    assert [row["epoch"] for row in read_csv_rows(tmp_path / "metrics.csv")] == [1, 2]

    resumed = RunFolder(tmp_path)
    assert resumed.restore(2, json.loads(folder.history_json())) == []  # the two rows are intact
    resumed.add_epoch({"epoch": 3, "loss": 0.125}, {"epoch": 3}, [])
    assert (tmp_path / "metrics.csv").read_text() == "epoch,loss\n1,0.5\n2,0.25\n3,0.125\n"


@pytest.mark.parametrize("damage", ["missing", "truncated", "edited", "binary"])
def test_rows_a_file_lost_are_written_again_from_the_checkpoints_history(tmp_path, damage):
    from dlrun.outputs.run_folder import RunFolder

    folder = RunFolder(tmp_path)
    for epoch in (1, 2, 3):
        folder.add_epoch({"epoch": epoch, "loss": 0.5 / epoch}, {"epoch": epoch}, [])
    history = json.loads(folder.history_json())
    whole = (tmp_path / "metrics.csv").read_bytes()
    metrics = tmp_path / "metrics.csv"
    if damage == "missing":
        metrics.unlink()
    elif damage == "truncated":
        metrics.write_bytes(whole[:-8])
    elif damage == "edited":
        metrics.write_text(whole.decode().replace("0.25", "0.2"))
    else:
        metrics.write_bytes(b"\xff\xfe" + whole)
    assert RunFolder(tmp_path).restore(3, history) == ["metrics.csv"]
    assert metrics.read_bytes() == whole
    # A file with rows beyond the checkpoint (epochs run after it) is not damaged.
    folder.add_epoch({"epoch": 4, "loss": 0.1}, {"epoch": 4}, [])
    assert RunFolder(tmp_path).restore(3, history) == []


def test_a_failed_append_says_the_rows_so_far_are_intact(tmp_path):
    from dlrun.errors import DlrunError
    from dlrun.outputs.run_folder import RunFolder

    folder = RunFolder(tmp_path)
    folder.add_epoch({"epoch": 1, "loss": 0.5}, {"epoch": 1}, [])
    (tmp_path / "metrics.csv").unlink()
    (tmp_path / "metrics.csv").mkdir()  # no longer a file that can be appended to
    with pytest.raises(DlrunError, match="Cannot add to .*metrics.csv.*rows already written"):
        folder.add_epoch({"epoch": 2, "loss": 0.25}, {"epoch": 2}, [])


@pytest.mark.parametrize(
    ("override", "phrase"),
    [
        ("optimizer.lr=-1", "optimizer.lr=-1"),
        ("model.dropout=[1.5]", "model.dropout=[1.5] has 1.5"),
        ("trainer.epochs=-1", "trainer.epochs=-1"),
    ],
)
def test_out_of_range_values_name_the_key_and_the_range(workdir, override, phrase):
    result = run_dlrun(*SMOKE, "model=mlp", override, cwd=workdir)
    assert_failed_cleanly(result, phrase)
    assert result.returncode == 2
    assert_no_finished_run(workdir)


def test_a_failing_job_is_reported_and_the_sweep_goes_on(workdir):
    import pandas as pd

    result = run_dlrun("-m", *SMOKE, "optimizer.lr=0.1,-1,0.05", cwd=workdir)
    assert result.returncode == 1
    (sweep,) = (workdir / "outputs" / "multirun").glob("*/*")
    table = pd.read_csv(sweep / "sweep_summary.csv")
    assert table["status"].tolist() == ["completed", "failed", "completed"]
    assert "optimizer.lr=-1" in table["error"].iloc[1]
