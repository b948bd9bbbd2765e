"""A Hydra job held open while other jobs run: what `hydra.core.utils.run_job` does before
and after it calls the task function, split in two, so that a fused group's jobs are all
open while they train together.

Each job has its own folder, `.hydra/` files, train.log and callbacks (the sweep's live
table and report), as under Hydra's basic launcher. Its log lines go to its own train.log
while it is `active()`.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, _save_config, configure_log
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from dlrun.outputs.run_folder import CONFIG_YAML, OVERRIDES_YAML


class OpenJob:
    def __init__(self, context: HydraContext, task_function: TaskFunction, config: DictConfig):
        self.context, self.task_function, self.config = context, task_function, config
        self.number: int = config.hydra.job.num
        HydraConfig.instance().set_config(config)
        output_dir = os.path.join(
            str(OmegaConf.select(config, "hydra.sweep.dir")),
            str(OmegaConf.select(config, "hydra.sweep.subdir")),
        )
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = os.path.abspath(output_dir)
        HydraConfig.instance().set_config(config)
        self.output_dir = config.hydra.runtime.output_dir
        self.task_cfg = copy.deepcopy(config)
        with read_write(self.task_cfg), open_dict(self.task_cfg):
            del self.task_cfg["hydra"]
        self.hydra_state = HydraConfig.instance().cfg  # set again, not copied, when active
        self.hydra_cfg = copy.deepcopy(self.hydra_state)
        self.result = JobReturn(
            overrides=OmegaConf.to_container(config.hydra.overrides.task),
            cfg=self.task_cfg,
            hydra_cfg=self.hydra_cfg,
            working_dir=os.getcwd(),
        )
        Path(self.output_dir).mkdir(parents=True, exist_ok=True)
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        self.handlers = list(logging.getLogger().handlers)
        if config.hydra.output_subdir is not None:
            hydra_output = Path(self.output_dir) / str(config.hydra.output_subdir)
            _save_config(self.task_cfg, CONFIG_YAML, hydra_output)
            _save_config(self.hydra_cfg, "hydra.yaml", hydra_output)
            _save_config(config.hydra.overrides.task, OVERRIDES_YAML, hydra_output)
        context.callbacks.on_job_start(config=config, task_function=task_function)

    @contextmanager
    def active(self, console: bool = True) -> Iterator[None]:
        """This job's Hydra config and log handlers in place; without `console`, its lines
        go to its train.log only (a fused group prints one line per epoch for all)."""
        root = logging.getLogger()
        hydra_cfg, handlers = HydraConfig.instance().cfg, root.handlers
        HydraConfig.instance().cfg = self.hydra_state
        root.handlers = [h for h in self.handlers if console or isinstance(h, logging.FileHandler)]
        try:
            yield
        finally:
            root.handlers = handlers
            HydraConfig.instance().cfg = hydra_cfg

    def close(self, value: Any) -> JobReturn:
        """The job's end as Hydra's callbacks and sweepers hear of it."""
        self.result.return_value = value
        self.result.status = JobStatus.COMPLETED
        self.result.task_name = JobRuntime.instance().get("name")
        for handler in self.handlers:
            handler.flush()
        with self.active():
            self.context.callbacks.on_job_end(config=self.config, job_return=self.result)
        for handler in self.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.close()
        return self.result
