"""Tables: any CSV file (`dataset=csv`) and scikit-learn's bundled wine data (`dataset=wine`).

Both go through `csv_dataset`: pandas reads the CSV, the columns are checked (target and
features present, numeric, no empty cells), the rows are split into train and test
(stratified for classification) and the features are optionally standardized with a
StandardScaler fitted on the training split only.

Inputs are float32 (N, features). Classification targets are int64 class ids 0..K-1, given
to the sorted unique values of the target column (kept as `meta.class_names`); regression
targets are float32 (N, 1).

pandas and scikit-learn are imported inside the functions: they are slow to import, and most
runs never need them.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlrun.config.options.data import CsvConfig, TabularTask, WineConfig
from dlrun.config.registry import DATASETS
from dlrun.data.dataset import CLASSIFICATION, REGRESSION, Dataset, DatasetMeta, Split
from dlrun.errors import DlrunError


@dataclass(frozen=True)
class TableSpec:
    """How a table becomes a Dataset: which columns, which task, how it is split."""

    target: str | None = None  # None: the last column
    features: tuple[str, ...] | None = None  # None: every column but the target
    task: str = CLASSIFICATION
    test_size: float = 0.2
    random_state: int = 88
    standardize: bool = False


@DATASETS.register("csv")
def csv(cfg: CsvConfig) -> Dataset:
    spec = TableSpec(
        target=cfg.target,
        features=None if cfg.features is None else tuple(cfg.features),
        task=TabularTask(cfg.task).value,
        test_size=cfg.test_size,
        random_state=cfg.random_state,
        standardize=cfg.standardize,
    )
    return csv_dataset(cfg.path, str(cfg.path), spec)


WINE_TARGET = "cultivar"


@DATASETS.register("wine")
def wine(cfg: WineConfig) -> Dataset:
    """scikit-learn's wine data, written as a CSV text and read back like any CSV file."""
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame = bunch.data.copy()
    frame[WINE_TARGET] = [str(bunch.target_names[i]) for i in bunch.target]  # class_0..2
    spec = TableSpec(
        target=WINE_TARGET,
        task=CLASSIFICATION,
        test_size=cfg.test_size,
        random_state=cfg.random_state,
        standardize=cfg.standardize,
    )
    return csv_dataset(io.StringIO(frame.to_csv(index=False)), "scikit-learn's wine data", spec)


def csv_dataset(source: str | Path | io.TextIOBase, label: str, spec: TableSpec) -> Dataset:
    """Read a CSV (a file path or a text stream), check its columns and split it.

    `label` names the table in error messages (the path, for a file).
    """
    frame = read_csv(source, label)
    return table_dataset(frame, label, spec)


def read_csv(source: str | Path | io.TextIOBase, label: str) -> Any:
    """A pandas DataFrame of the CSV, or a DlrunError saying why it cannot be had."""
    import pandas as pd

    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            raise DlrunError(
                f"dataset.path={label}: there is no such file (looked for {path.absolute()}). "
                f"Pass dataset.path=FILE with the path of your CSV file."
            )
        if not path.is_file():
            raise DlrunError(
                f"dataset.path={label} is not a file (it is a folder or a device): pass "
                f"dataset.path=FILE with the path of a CSV file."
            )
        source = path
    try:
        with warnings.catch_warnings():
            # Rows longer than the header: an error, not a warning and a silently cut row.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # index_col=False: never take the first column for an index, even then.
            frame = pd.read_csv(source, skipinitialspace=True, index_col=False)
    except pd.errors.EmptyDataError as err:
        raise DlrunError(
            f"{label} is empty: a CSV file with a header row and data rows is needed."
        ) from err
    except (OSError, ValueError, pd.errors.ParserWarning) as err:  # ParserError, decoding...
        raise DlrunError(
            f"{label} could not be read as a CSV file ({err}): give a comma-separated text "
            f"file with a header row."
        ) from err
    if len(frame) == 0:
        raise DlrunError(
            f"{label} has a header row but no data rows: there is nothing to train on."
        )
    return frame


def _targets(frame: Any, target: str, label: str, spec: TableSpec):
    """The target column as a tensor (class ids or values), its classes, what to stratify by."""
    import numpy as np

    n = len(frame)
    n_test = math.ceil(spec.test_size * n)
    n_train = n - n_test
    if spec.task == CLASSIFICATION:
        classes, ids = np.unique(frame[target].to_numpy(), return_inverse=True)
        ids = ids.reshape(-1)
        _check_classes(frame, target, classes, ids, label, spec, n_train, n_test)
        y = torch.from_numpy(ids.astype(np.int64))
        stratify = ids
    elif spec.task == REGRESSION:
        if n_train < 1 or n_test < 1:
            raise DlrunError(
                f"dataset.test_size={spec.test_size} leaves {n_train} training and {n_test} "
                f"test rows out of the {n} rows of {label}: both splits need at least one row."
            )
        values = _numeric(frame, target, label, "Target").astype(np.float32)
        _check_finite(values.reshape(-1, 1), [target], label)
        y = torch.from_numpy(values).reshape(-1, 1)
        classes, stratify = None, None
    else:
        raise DlrunError(
            f"dataset.task={spec.task} is not a table task: use classification or regression."
        )
    return y, classes, stratify


def table_dataset(frame: Any, label: str, spec: TableSpec) -> Dataset:
    """Check the table's columns, split its rows and hand them over as tensors."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    target, features = _columns(frame, label, spec)
    _check_no_empty_cells(frame, [*features, target], label)
    x = np.stack([_numeric(frame, column, label, "Feature") for column in features], axis=1)
    x = x.astype(np.float32)
    _check_finite(x, features, label)

    n = len(frame)
    y, classes, stratify = _targets(frame, target, label, spec)

    try:
        train_idx, test_idx = train_test_split(
            np.arange(n),
            test_size=spec.test_size,
            random_state=spec.random_state,
            stratify=stratify,
        )
    except ValueError as err:  # the checks above should have caught every case
        raise DlrunError(f"The rows of {label} could not be split ({err}).") from err

    x_train, x_test = x[train_idx], x[test_idx]
    if spec.standardize:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x_train)  # on the training split only: no test leakage
        x_train = scaler.transform(x_train).astype(np.float32)
        x_test = scaler.transform(x_test).astype(np.float32)

    train_idx_t, test_idx_t = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    meta = DatasetMeta(
        task=spec.task,
        input_shape=(len(features),),
        num_classes=0 if classes is None else len(classes),
        class_names=() if classes is None else tuple(_class_name(c) for c in classes),
        num_outputs=1,
        feature_names=tuple(features),
    )
    return Dataset(
        train=Split(torch.from_numpy(np.ascontiguousarray(x_train)), y[train_idx_t]),
        test=Split(torch.from_numpy(np.ascontiguousarray(x_test)), y[test_idx_t]),
        meta=meta,
    )


def _columns(frame: Any, label: str, spec: TableSpec) -> tuple[str, list[str]]:
    """The target column and the feature columns, each checked against the file's columns."""
    columns = [str(c) for c in frame.columns]
    listed = ", ".join(columns)
    target = columns[-1] if spec.target is None else str(spec.target)
    if target not in columns:
        raise DlrunError(
            f"dataset.target={target} is not a column of {label}: its columns are {listed}."
        )
    if spec.features is None:
        features = [c for c in columns if c != target]
        if not features:
            raise DlrunError(
                f"{label} has no column besides the target '{target}': at least one feature "
                f"column is needed."
            )
        return target, features

    features = [str(c) for c in spec.features]
    if not features:
        raise DlrunError(
            "dataset.features=[] lists no column: give feature columns, or null for every "
            "column but the target."
        )
    absent = [c for c in features if c not in columns]
    if absent:
        names = ", ".join(f"'{c}'" for c in absent)
        raise DlrunError(
            f"dataset.features names {names}, not a column of {label}: its columns are {listed}."
        )
    if target in features:
        raise DlrunError(
            f"dataset.features lists the target column '{target}': a target cannot also be a "
            f"feature; leave it out of dataset.features."
        )
    repeated = sorted({c for c in features if features.count(c) > 1})
    if repeated:
        names = ", ".join(f"'{c}'" for c in repeated)
        raise DlrunError(f"dataset.features lists {names} more than once: list each column once.")
    return target, features


def _check_no_empty_cells(frame: Any, columns: list[str], label: str) -> None:
    counts = frame[columns].isna().sum()
    empty = [(column, int(counts[column])) for column in columns if counts[column] > 0]
    if empty:
        found = ", ".join(f"'{c}' ({k} empty)" for c, k in empty)
        raise DlrunError(
            f"{label} has empty (NaN) cells in column(s) {found}: fill them in or drop those "
            f"rows (or leave the column out with dataset.features=[...])."
        )


def _numeric(frame: Any, column: str, label: str, role: str) -> Any:
    """The column as a float64 array, or a DlrunError naming it and a value that is no number."""
    import numpy as np
    import pandas as pd

    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64)
    if not pd.api.types.is_numeric_dtype(values):
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna() & values.notna()
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            example = values.iloc[position]
            hint = (
                "encode it as numbers, or leave it out with dataset.features=[...]"
                if role == "Feature"
                else "use dataset.task=classification for a column of labels"
            )
            raise DlrunError(
                f"{role} column '{column}' of {label} is not numeric: it holds {example!r} "
                f"(data row {position + 1}, counting from 1 after the header); {hint}."
            )
        values = converted
    return values.to_numpy(dtype=np.float64)


def _check_finite(x: Any, columns: list[str], label: str) -> None:
    import numpy as np

    finite = np.isfinite(x)
    if not finite.all():
        bad = [c for c, ok in zip(columns, finite.all(axis=0), strict=True) if not ok]
        names = ", ".join(f"'{c}'" for c in bad)
        raise DlrunError(
            f"Column(s) {names} of {label} hold infinite values (or values too large for "
            f"float32): remove or clip them."
        )


def _check_classes(
    frame: Any,
    target: str,
    classes: Any,
    ids: Any,
    label: str,
    spec: TableSpec,
    n_train: int,
    n_test: int,
) -> None:
    """A stratified split needs two classes or more, each with a row in both splits."""
    import numpy as np
    import pandas as pd

    if len(classes) < 2:
        raise DlrunError(
            f"Target column '{target}' of {label} holds a single class "
            f"({_class_name(classes[0])!r}): classification needs at least two; pick "
            f"another dataset.target."
        )
    counts = np.bincount(ids, minlength=len(classes))
    scarce = [(classes[i], int(counts[i])) for i in np.flatnonzero(counts < 2)]
    if scarce:
        found = ", ".join(f"{_class_name(c)!r} ({k} row)" for c, k in scarce[:5])
        more = f" and {len(scarce) - 5} more" if len(scarce) > 5 else ""
        hint = (
            "; a continuous target wants dataset.task=regression"
            if pd.api.types.is_float_dtype(frame[target])
            else ""
        )
        raise DlrunError(
            f"Target column '{target}' of {label} has classes with too few rows to stratify: "
            f"{found}{more}. A stratified split needs at least 2 rows of each class{hint}."
        )
    if n_test < len(classes) or n_train < len(classes):
        raise DlrunError(
            f"dataset.test_size={spec.test_size} puts {n_test} of the {n_train + n_test} rows "
            f"of {label} into the test split and {n_train} into the training split, but a "
            f"stratified split needs at least one row of each of the {len(classes)} classes "
            f"of '{target}' on both sides: change dataset.test_size or use more rows."
        )


def _class_name(value: Any) -> str:
    """'3' rather than '3.0' for whole numbers read as floats; str() otherwise."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):  # numpy scalars
        return _class_name(value.item())
    return str(value)
