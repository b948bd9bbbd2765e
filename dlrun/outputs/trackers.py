"""Experiment trackers, several per run (`logger=[tensorboard,mlflow]`; default `[none]`).

The run folder's CSV files (metrics.csv, steps.csv...) are always written; these loggers
send the same figures to a tracker as well. Every logger gets the same calls:

    start(run_dir, config, run_name)            once, before the first epoch
    log_metrics(metrics, step, prefix)          per epoch: step=epoch, prefix="epoch/";
                                                per logged step: global step, prefix="step/"
    log_params(params)                          optional, extra hyperparameters
    finish(summary)                             once, at the end (summary.json's content)
    close()                                     on failure: release without finishing

The tracker packages are optional (`pip install 'dlrun[tracking]'`): they are looked for when
the loggers are built, so that a missing one stops the run before training, and imported
only when a logger starts, so that `dlrun` starts as fast without them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlrun.config.options.loggers import MlflowConfig, TensorBoardConfig
from dlrun.config.registry import Registry
from dlrun.errors import DlrunError

LOGGERS = Registry("logger")

# The x axis of a row (steps.csv rows carry both); never sent as a metric of its own.
AXIS_KEYS = frozenset({"epoch", "step"})
# Older MLflow servers refuse longer parameter values (newer ones take 6000 characters).
MLFLOW_MAX_PARAM_LENGTH = 500
MLFLOW_MAX_KEY_LENGTH = 250
MLFLOW_BATCH = 100  # parameters or metrics per log_batch call (the server's limit is 100/1000)


class Logger:
    """Base: every method does nothing."""

    name = ""  # the option's key under `logger`, set when built
    # Reads the run folder in finish(): finishes after the others, whose files it then has.
    uploads_run_folder = False

    def start(self, run_dir: Path, config: dict, run_name: str) -> None:
        """Open the tracker's run for the run folder `run_dir`; `config` is the resolved config."""

    def log_metrics(self, metrics: dict[str, float], step: int, prefix: str = "") -> None:
        """Record numeric `metrics` at `step`, each named `prefix + key`."""

    def log_params(self, params: dict) -> None:
        """Record hyperparameters beyond the config given to start() (nested dicts flatten)."""

    def finish(self, summary: dict) -> None:
        """Record the outcome (status, final and best metrics) and close the tracker's run."""

    def close(self) -> None:
        """After a failure: close the tracker's run as failed. Does nothing after finish()."""


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1, 'c': [2, 3]}} -> {'a.b': 1, 'a.c': '[2, 3]'}: scalars kept, rest as text.

    An empty dict stays as '{}' so that e.g. `regularizer: {}` still shows up.
    """
    if isinstance(tree, dict) and tree:
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    key = prefix[:-1]
    if isinstance(tree, bool | int | float | str):
        return {key: tree}
    return {key: str(tree)}  # lists, None, {} and anything else, as text


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """The values a tracker can plot: numbers (not bools), without the axis keys."""
    return {
        str(key): float(value)
        for key, value in metrics.items()
        if key not in AXIS_KEYS and isinstance(value, int | float) and not isinstance(value, bool)
    }


def outcome_metrics(summary: dict) -> dict[str, float]:
    """final/<metric> and best/<metric> from a run summary (recipe/summary.py)."""
    result = {}
    for part in ("final", "best"):
        values = summary.get(part) or {}
        result.update({f"{part}/{k}": v for k, v in numeric(values).items()})
        if part == "best" and isinstance(values.get("epoch"), int):
            result["best/epoch"] = float(values["epoch"])
    return result


def require(logger: str, package: str) -> None:
    """Fail now, before training, when the tracker's package is not installed."""
    if importlib.util.find_spec(package) is None:
        raise DlrunError(
            f"logger {logger} needs the `{package}` package: pip install 'dlrun[tracking]' "
            f"(or pip install {package}), or drop {logger} from `logger=[...]`."
        )


# --- TensorBoard ------------------------------------------------------------------------


class TensorBoardLogger(Logger):
    """Scalars per epoch and per step; the config and final metrics in the HParams tab."""

    def __init__(self, log_dir: str | None) -> None:
        self.log_dir = log_dir
        self.writer: Any = None
        self.hparams: dict[str, Any] = {}

    def start(self, run_dir: Path, config: dict, run_name: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        run_dir = Path(run_dir)
        if self.log_dir is None:
            path = run_dir / "tensorboard"
        else:
            path = Path(self.log_dir).expanduser() / (run_name or run_dir.name)
        # add_hparams takes bool, int, float and str: flatten() turns the rest into text.
        self.hparams = flatten(config)
        self.writer = SummaryWriter(log_dir=str(path))

    def log_metrics(self, metrics: dict[str, float], step: int, prefix: str = "") -> None:
        for key, value in numeric(metrics).items():
            self.writer.add_scalar(f"{prefix}{key}", value, global_step=step)

    def log_params(self, params: dict) -> None:
        self.hparams.update(flatten(params))

    def finish(self, summary: dict) -> None:
        if self.writer is None:
            return
        final = outcome_metrics(summary)
        if self.hparams:
            # run_name=".": the hparams go into this run's own folder, not a subfolder, so
            # the HParams tab links them to the scalars above.
            self.writer.add_hparams(self.hparams, final, run_name=".")
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


@LOGGERS.register("tensorboard")
def tensorboard_logger(cfg: TensorBoardConfig) -> Logger:
    require("tensorboard", "tensorboard")
    return TensorBoardLogger(cfg.log_dir)


# --- MLflow -------------------------------------------------------------------------------


class MlflowLogger(Logger):
    """One MLflow run per dlrun run: config as params, metrics with steps, folder as artifacts.

    Uses MlflowClient rather than the fluent API: no process-wide active run or tracking
    URI is set, so nothing is left behind for other code, or for the next job of a sweep.
    """

    uploads_run_folder = True

    def __init__(self, tracking_uri: str | None, experiment_name: str, run_name: str | None):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.client: Any = None
        self.run_id: str | None = None
        self.run_dir: Path | None = None
        self.params: dict[str, str] = {}

    def start(self, run_dir: Path, config: dict, run_name: str) -> None:
        from mlflow.tracking import MlflowClient

        self.run_dir = Path(run_dir)
        uri = resolve_tracking_uri(self.tracking_uri)
        self.tracking_uri = uri
        if uri.startswith("file:"):
            # MLflow 3 refuses its file store unless asked for it; it stays fastest to open
            # (a new sqlite store takes seconds of migrations). An explicit setting wins.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        experiment_id = self._experiment_id()
        name = self.run_name or run_name or self.run_dir.name
        run = self.client.create_run(
            experiment_id,
            run_name=name,
            tags={"dlrun.run_dir": str(self.run_dir.resolve()), "status": "running"},
        )
        self.run_id = run.info.run_id
        self.log_params(config)

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return self.client.create_experiment(self.experiment_name)
        except MlflowException:  # another job of a sweep created it just now
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def log_metrics(self, metrics: dict[str, float], step: int, prefix: str = "") -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        entries = [
            Metric(_mlflow_key(f"{prefix}{key}"), value, now, int(step))
            for key, value in numeric(metrics).items()
        ]
        for i in range(0, len(entries), MLFLOW_BATCH):
            self.client.log_batch(self.run_id, metrics=entries[i : i + MLFLOW_BATCH])

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        # Parameters cannot change once logged: send each key once.
        new = {}
        for key, value in flatten(params).items():
            key = _mlflow_key(key)
            if key and key not in self.params:
                new[key] = str(value)[:MLFLOW_MAX_PARAM_LENGTH]
        self.params.update(new)
        entries = [Param(k, v) for k, v in new.items()]
        for i in range(0, len(entries), MLFLOW_BATCH):
            self.client.log_batch(self.run_id, params=entries[i : i + MLFLOW_BATCH])

    def finish(self, summary: dict) -> None:
        if self.run_id is None:
            return
        status = str(summary.get("status", "completed"))
        try:
            step = summary.get("epochs_run")
            self.log_metrics(outcome_metrics(summary), step if isinstance(step, int) else 0)
            self.client.set_tag(self.run_id, "status", status)
            if summary.get("stopped_early"):
                self.client.set_tag(self.run_id, "stopped_early", str(summary["stopped_early"]))
            self.client.log_artifacts(self.run_id, str(self.run_dir))
        except BaseException:
            self.close()
            raise
        self._end("FAILED" if status == "failed" else "FINISHED")

    def close(self) -> None:
        if self.run_id is None:
            return
        try:
            self.client.set_tag(self.run_id, "status", "failed")
        finally:
            self._end("FAILED")

    def _end(self, status: str) -> None:
        run_id, self.run_id = self.run_id, None
        self.client.set_terminated(run_id, status=status)


def resolve_tracking_uri(uri: str | None) -> str:
    """null -> file:<cwd>/outputs/mlruns; a plain relative path -> an absolute file: URI."""
    if uri is None or uri == "":
        return (Path.cwd() / "outputs" / "mlruns").as_uri()
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri) and not re.match(r"^[A-Za-z]:[\\/]", uri):
        if uri.startswith("file:") and not uri.startswith("file:/"):  # file:relative/path
            return (Path.cwd() / uri.removeprefix("file:")).as_uri()
        return uri  # http://, databricks, sqlite:///..., file:///abs/path
    return Path(uri).expanduser().resolve().as_uri()  # a path, relative to the current folder


def _mlflow_key(key: str) -> str:
    # MLflow names take letters, digits, _ - . space / only.
    return re.sub(r"[^\w\-. /]", "_", key)[:MLFLOW_MAX_KEY_LENGTH]


@LOGGERS.register("mlflow")
def mlflow_logger(cfg: MlflowConfig) -> Logger:
    require("mlflow", "mlflow")
    if not cfg.experiment_name:
        raise DlrunError("logger.mlflow.experiment_name is empty: give the experiment a name.")
    return MlflowLogger(cfg.tracking_uri, cfg.experiment_name, cfg.run_name)


def build_loggers(cfg: DictConfig | dict | None) -> list[Logger]:
    """One logger per entry of the `logger` node, keyed by option name (none: no entries).

    Loggers that upload the run folder come last, so that finishing them in list order
    uploads the others' complete files (e.g. TensorBoard's events into MLflow's artifacts).
    """
    loggers = []
    for key, entry in (cfg or {}).items():
        logger = LOGGERS.build(entry)
        logger.name = str(key)
        loggers.append(logger)
    return sorted(loggers, key=lambda logger: logger.uploads_run_folder)
