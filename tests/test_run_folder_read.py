"""read_config's libyaml path gives what OmegaConf.load gives (outputs/run_folder.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dlrun.config.composition import compose
from dlrun.outputs import run_folder

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
# Values whose type YAML's rules and OmegaConf's differ on, as OmegaConf writes them.
TRICKY = {
    "floats": [1e-3, 1.5e10, 0.1, float("inf"), -2.0],
    "strings": ["1e-3", "2026-12-07", "yes", "no", "null", "0o17", "1_000", "1:30", "~", ""],
    "ints": [0, -7, 10**12],
    "flags": [True, False, None],
}


def written(tmp_path: Path, config) -> Path:
    """The config as a run's .hydra/config.yaml, its interpolations (a data root) resolved."""
    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    (folder / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(config, resolve=True))
    return folder


def omegaconf_read(folder: Path):
    return OmegaConf.to_container(OmegaConf.load(folder / ".hydra" / "config.yaml"), resolve=True)


@pytest.mark.parametrize("preset", [p for p in PRESETS if not p.startswith("phone_")])
def test_every_preset_reads_back_as_omegaconf_reads_it(tmp_path, preset):
    config = compose([f"experiment={preset}"])
    folder = written(tmp_path, config)
    assert "${" not in (folder / ".hydra" / "config.yaml").read_text()  # the fast path
    assert run_folder.read_config(folder) == omegaconf_read(folder)


def test_values_yaml_and_omegaconf_type_differently_read_back_alike(tmp_path):
    folder = written(tmp_path, OmegaConf.create(TRICKY))
    assert run_folder.read_config(folder) == omegaconf_read(folder) == TRICKY


def test_a_config_written_by_hand_reads_by_omegaconf_rules(tmp_path):
    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("lr: 1e-3\nday: 2026-12-07\nflag: yes\n")
    assert run_folder.read_config(folder) == omegaconf_read(folder)
    assert run_folder.read_config(folder) == {"lr": 0.001, "day": "2026-12-07", "flag": True}


def test_a_config_with_an_interpolation_is_resolved_by_omegaconf(tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_ROOT", "/mnt/data")
    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("root: ${oc.env:SOME_ROOT,data}\nx: 1\n")
    assert run_folder.read_config(folder) == {"root": "/mnt/data", "x": 1}


def test_csv_cells_come_back_as_ints_floats_text_or_none(tmp_path):
    from dlrun.outputs.io import read_csv_rows

    path = tmp_path / "rows.csv"
    path.write_text("a,b,c,d,e,f,g,h\n3,0.25,1e-05,nan,-inf,sgd,,1_000\n")
    (row,) = read_csv_rows(path)
    assert [type(v) for v in row.values()] == [
        int,
        float,
        float,
        float,
        float,
        str,
        type(None),
        int,
    ]
    assert (row["a"], row["b"], row["c"], row["f"], row["h"]) == (3, 0.25, 1e-05, "sgd", 1000)
    assert row["d"] != row["d"] and row["e"] == float("-inf")
