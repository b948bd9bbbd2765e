"""What is learnt: classification, regression, language modelling, and their metrics.

Importing this package registers the three built-in tasks.
"""

from dlrun.config.metric_directions import direction, task_of_columns
from dlrun.tasks import classification, language_model, regression  # noqa: F401
from dlrun.tasks.base import TASKS, Task, metric_columns, task_for

__all__ = ["TASKS", "Task", "direction", "metric_columns", "task_for", "task_of_columns"]
