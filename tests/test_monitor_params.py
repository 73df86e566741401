"""params.yaml's ``monitor:`` section is the only home of the monitor's settings: a value changed
there reaches the monitor and the simulator, and the code keeps no second copy to fall back on."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import monitor_synthetic as ms
import pytest
import yaml
from monitor_synthetic import run_cli, strict_json

from pipeline import paths
from pipeline.monitoring import config, simulate

REPO = Path(__file__).resolve().parent.parent
CODE = [*sorted((REPO / "pipeline" / "monitoring").glob("*.py")),
        *(REPO / "pipeline" / "commands" / f"{name}.py" for name in ("monitor", "simulate_traffic", "fetch_logs"))]


def repository_params() -> dict:
    return yaml.safe_load((REPO / paths.PARAMS).read_text(encoding="utf-8"))


def leaf_keys(section: dict, prefix: str = "") -> list[str]:
    """``a.b.c`` for every value of a nested mapping."""
    keys = []
    for key, value in section.items():
        dotted = f"{prefix}{key}"
        keys += leaf_keys(value, f"{dotted}.") if isinstance(value, dict) and value else [dotted]
    return keys


def without(section: dict, dotted: str) -> dict:
    """A deep copy of ``section`` without the key ``dotted``."""
    out = yaml.safe_load(yaml.safe_dump(section))
    *parents, last = dotted.split(".")
    inner = out
    for key in parents:
        inner = inner[key]
    del inner[last]
    return out


def read_everything() -> None:
    """Every setting the monitor and the simulator read from the repository's params.yaml."""
    params = config.defaults()
    simulate.traffic_config(params.simulate, "1.0.0")
    simulate.phish_file(params.simulate)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A working directory whose params.yaml stands for the repository's (the file the code reads)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "REPOSITORY_PARAMS", tmp_path / paths.PARAMS)
    return tmp_path


def write_params(root: Path, params: dict) -> None:
    (root / paths.PARAMS).write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def test_a_value_changed_in_params_yaml_reaches_the_monitor(project):
    params = repository_params()
    params["monitor"]["alert"]["min_rows"] = 123_456
    params["monitor"]["simulate"]["weekend_factor"] = 0.25
    write_params(project, params)
    assert config.defaults().min_rows == 123_456
    assert simulate.traffic_config(config.defaults().simulate, "1.0.0").weekend_factor == 0.25
    log = ms.to_csv_log(ms.synthetic_log(1, windows=6, rows_per_window=300), project / "log.csv")
    assert run_cli("monitor", "--log", log, "--out", project / "out") == 0  # --params: ./params.yaml
    result = strict_json(project / "out" / "monitor.json")
    assert result["params"]["min_rows"] == 123_456
    assert {w["status"] for w in result["windows"]} == {"insufficient data"}


@pytest.mark.parametrize("key", leaf_keys(repository_params()["monitor"]))
def test_the_code_keeps_no_second_copy_of_a_setting(project, key):
    """Take any key out of params.yaml and the monitor says which one is missing, rather than
    falling back on a value of its own."""
    write_params(project, {**repository_params(), "monitor": without(repository_params()["monitor"], key)})
    with pytest.raises(ValueError, match=rf"params monitor\.{key} is missing"):
        read_everything()


def test_the_repository_params_are_found_from_any_directory(tmp_path, monkeypatch):
    """The scheduled workflow's monitor step runs outside a checkout under act: the values come from
    the params.yaml beside the code; ./params.yaml (the --params default) only changes them."""
    monkeypatch.chdir(tmp_path)
    assert config.REPOSITORY_PARAMS == REPO / paths.PARAMS
    assert config.load() == config.defaults() == config.load(REPO / paths.PARAMS)


def test_the_settings_carry_no_defaults_in_code():
    for settings in (config.MonitorParams, simulate.TrafficConfig):
        with_default = [f.name for f in dataclasses.fields(settings)
                        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
        assert with_default == [], settings.__name__


def test_output_folders_come_from_paths_py():
    literals = {str(p.relative_to(REPO)): [node.value for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                                           if isinstance(node, ast.Constant) and isinstance(node.value, str)
                                           and node.value.startswith(f"{paths.BUILD}/")]
                for p in CODE}
    assert {path: found for path, found in literals.items() if found} == {}
    with pytest.raises(ValueError, match=f"monitor.out is no longer read: the outputs go to {paths.MONITORING}"):
        config.from_mapping({"out": "elsewhere"})


def test_a_params_file_names_only_what_it_changes():
    repository = config.defaults()
    changed = config.from_mapping({"alert": {"min_rows": 7}, "reference": {"start": "2024-01-01"}})
    assert (changed.min_rows, changed.reference_start) == (7, "2024-01-01")
    assert dataclasses.replace(changed, min_rows=repository.min_rows, reference_start=repository.reference_start) \
        == repository
