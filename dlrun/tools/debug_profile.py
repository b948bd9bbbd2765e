"""`debug=profile`: torch.profiler over debug.batches optimizer steps after debug.warmup
steps (first calls and allocations left out). It writes a trace that Perfetto
(ui.perfetto.dev) or chrome://tracing opens, and prints the operators that took the most
time. On cuda it also says how much of the recorded steps the device was busy, and so how
long it waited for the host."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlrun.outputs.lock import FolderLock
from dlrun.outputs.run_folder import DEBUG, PROFILE_TRACE
from dlrun.recipe.recipe import Recipe
from dlrun.tools.debug import limit_batches, tool_entry
from dlrun.training.state import TrainState

log = logging.getLogger("dlrun")


class ProfileRecipe(Recipe):
    def setup_outputs(self) -> None:
        super().setup_outputs()
        self.epoch_end.step_watchers.append(self._stepped)
        self.window: list[float] = []  # when each recorded step ended

    def watching(self) -> AbstractContextManager:
        return self._profiling()

    @contextmanager
    def _profiling(self) -> Iterator[None]:
        from torch.profiler import ProfilerActivity, profile, schedule

        debug = self.cfg.debug
        activities = [ProfilerActivity.CPU]
        if self.device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        else:
            # On the CPU, kineto's own lines (its stages, its start and stop markers, a
            # failed GPU count) say nothing to the user; on cuda its errors (CUPTI's) do.
            os.environ.setdefault("KINETO_LOG_LEVEL", "6")
        trace = self.folder.profile_trace()
        plan = schedule(wait=0, warmup=debug.warmup, active=debug.batches, repeat=1)
        with profile(
            activities=activities,
            schedule=plan,
            on_trace_ready=lambda done: done.export_chrome_trace(str(trace)),
        ) as self.profiler:
            yield
        self.tool[DEBUG].update(self._found(self.profiler))

    def _stepped(self, state: TrainState) -> None:
        self.profiler.step()
        if state.step >= self.cfg.debug.warmup:
            self.window.append(time.perf_counter())

    def _found(self, profiler: Any) -> dict[str, Any]:
        cuda = self.device.type == "cuda"
        events = list(profiler.key_averages())
        # ProfilerStep#N spans a whole step: the step's time, not an operator.
        whole = [e for e in events if e.key.startswith("ProfilerStep")]
        events = [e for e in events if not e.key.startswith("ProfilerStep")]
        key = "self_device_time_total" if cuda else "self_cpu_time_total"
        events.sort(key=lambda event: getattr(event, key, 0.0), reverse=True)
        top = [_operator(event, cuda) for event in events[: self.cfg.debug.top]]
        found: dict[str, Any] = {"trace": PROFILE_TRACE, "top_operators": top}
        if whole:
            found["step_ms"] = round(whole[0].cpu_time_total / whole[0].count / 1e3, 3)
        if cuda and len(self.window) > 1:
            busy = sum(getattr(e, "self_device_time_total", 0.0) for e in events) / 1e3
            wall = (self.window[-1] - self.window[0]) * 1e3
            found["device_busy_ms"], found["recorded_ms"] = round(busy, 3), round(wall, 3)
        return found


def _operator(event: Any, cuda: bool) -> dict[str, Any]:
    row = {
        "name": event.key,
        "calls": event.count,
        "self_cpu_ms": round(event.self_cpu_time_total / 1e3, 3),
        "cpu_total_ms": round(event.cpu_time_total / 1e3, 3),
    }
    if cuda:
        row["self_device_ms"] = round(getattr(event, "self_device_time_total", 0.0) / 1e3, 3)
    return row


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    debug = cfg.debug
    steps = debug.warmup + debug.batches
    limit_batches(cfg, train=steps, test=1)
    cfg.trainer.epochs = 1
    log.info("debug=profile: %d warm-up steps, then %d recorded", debug.warmup, debug.batches)
    with FolderLock(output_dir):
        recipe = ProfileRecipe(cfg, output_dir)
        recipe.tool.update(tool_entry("profile", warmup=debug.warmup, recorded=debug.batches))
        recipe.setup()
        summary = recipe.train()
    _log_found(summary[DEBUG], Path(output_dir))
    return summary


def _log_found(found: dict[str, Any], folder: Path) -> None:
    top = found.get("top_operators", [])
    device = any("self_device_ms" in row for row in top)
    heading = f"{'operator':<40} {'calls':>6} {'self CPU ms':>12} {'CPU total ms':>13}"
    if "step_ms" in found:
        log.info("A recorded step took %.3f ms on the host", found["step_ms"])
    log.info("Top operators by self %s time:", "device" if device else "CPU")
    log.info("  %s%s", heading, f" {'self device ms':>15}" if device else "")
    for row in top:
        line = f"{row['name'][:40]:<40} {row['calls']:>6} {row['self_cpu_ms']:>12.3f} "
        line += f"{row['cpu_total_ms']:>13.3f}"
        if device:
            line += f" {row['self_device_ms']:>15.3f}"
        log.info("  %s", line)
    if "device_busy_ms" in found:
        busy, wall = found["device_busy_ms"], found["recorded_ms"]
        log.info(
            "The device was busy %.1f ms of %.1f ms recorded (%.0f%%): it waited for the host "
            "the rest of the time",
            busy,
            wall,
            100 * busy / wall if wall else 0.0,
        )
    log.info("Trace for ui.perfetto.dev or chrome://tracing: %s", folder / PROFILE_TRACE)
