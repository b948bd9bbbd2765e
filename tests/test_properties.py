"""Property tests: any numeric setting and any small CSV either works or fails clearly.

"Clearly" means a DlrunError (one paragraph for the user), never a traceback from deep
inside torch or pandas.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from conftest import compose
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlrun.config.registry import DATASETS
from dlrun.config.schema import validate
from dlrun.errors import DlrunError
from dlrun.recipe.recipe import run

CELLS = st.one_of(
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["", "abc", "1e3", " 7 "]),
)


@st.composite
def tables(draw) -> str:
    columns = draw(st.integers(1, 4))
    rows = draw(st.integers(0, 25))
    header = ",".join(f"c{i}" for i in range(columns)) + ",label"
    lines = [header]
    for _ in range(rows):
        cells = [draw(CELLS) for _ in range(columns)]
        label = draw(st.sampled_from([0, 1, 2, "x"]))
        lines.append(",".join(str(c) for c in [*cells, label]))
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(table=tables(), standardize=st.booleans(), test_size=st.floats(-0.5, 1.5))
def test_any_small_csv_loads_or_fails_clearly(table, standardize, test_size):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        path.write_text(table)
        cfg = {
            "name": "csv",
            "path": str(path),
            "target": None,
            "features": None,
            "task": "classification",
            "test_size": test_size,
            "random_state": 0,
            "standardize": standardize,
        }
        try:
            data = DATASETS.build(cfg)
        except DlrunError:
            return
    assert len(data.train) > 0 and len(data.test) > 0
    assert data.train.inputs.isfinite().all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    epochs=st.integers(-1, 2),
    batch_size=st.integers(-1, 700),
    lr=st.floats(-1.0, 1e3, allow_nan=False),
    dropout=st.floats(-0.5, 1.5, allow_nan=False),
    weight_decay=st.floats(-1.0, 10.0, allow_nan=False),
)
def test_any_numeric_setting_runs_or_fails_clearly(epochs, batch_size, lr, dropout, weight_decay):
    cfg = compose(
        "dataset=digits",
        "trainer=smoke",
        "model=mlp",
        "model.hidden=[16]",
        f"model.dropout=[{dropout}]",
        f"trainer.epochs={epochs}",
        f"trainer.batch_size={batch_size}",
        f"optimizer.lr={lr}",
        f"optimizer.weight_decay={weight_decay}",
        "diagnostics.layer_norms=false",
    )
    with tempfile.TemporaryDirectory() as folder:
        try:
            validate(cfg)  # as the job that starts a run does, before the recipe
            summary = run(cfg, folder)
        except DlrunError:
            return
    assert summary["status"] == "completed"
    assert epochs >= 1 and batch_size >= 1 and lr > 0 and 0 <= dropout < 1
    assert math.isfinite(summary["final"]["train_loss"])  # a NaN would have raised RunDiverged
