"""The documented example configuration is valid and complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasksync.cli import main
from tasksync.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads() -> None:
    s = load_settings(ROOT / "config" / "tasksync.example.toml")
    assert s.connector == "local"
    assert s.crm.columns["deals"]["value"] == "Amount"


def test_example_config_documents_every_section() -> None:
    text = (ROOT / "config" / "tasksync.example.toml").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        if field.exclude or name == "base_dir":
            continue
        assert name in text, name


NONSENSE = [
    ("[policy]\nband = -5", "policy.band"),
    ("[policy]\ntime_limit = -1", "policy.time_limit"),
    ("[policy]\ntime_limit = 0", "policy.time_limit"),
    ("[policy]\nsmoothing = -3", "policy.smoothing"),
    ("[policy]\nsector_weight = -0.2", "policy.sector_weight"),
    ("[policy]\nmove_cost = -1", "policy.move_cost"),
    ("[policy]\ncandidate_reps = 0", "policy.candidate_reps"),
    ("[policy]\nstage_weight = 3", "policy.stage_weight"),
    ('[policy]\nvalue_target = "median"', "policy.value_target"),
    ("[policy.size_bands]\nsmall = -10", "policy.size_bands"),
    ("[priority]\nshares = [0.1, -0.25, 0.35]", "priority.shares"),
    ("[priority]\nshares = [0.5, 0.5, 0.5]", "priority.shares"),
    ("[priority]\ntiers = []", "priority.tiers"),
    ('[priority]\ntiers = ["P1", "p1"]', "priority"),
    ("[priority]\nhysteresis = -0.1", "priority.hysteresis"),
    ("[priority]\ndue_soon_days = -14", "priority.due_soon_days"),
    ("[service]\nmax_move_share = 1.5", "service.max_move_share"),
    ("[service]\nmax_crm_drop = -0.5", "service.max_crm_drop"),
    ("[service]\nbackoff_max = 0", "service.backoff_max"),
    ("[service]\nfull_read_every = -60", "service.full_read_every"),
    ("[asana]\nrequests_per_minute = 0", "asana.requests_per_minute"),
    ('[crm]\ncurrency = "usd"', "crm.currency"),
    ('[crm]\ncurrency = "USD"\n[crm.rates]\nEUR = -1.08', "crm.rates"),
    ("[crm.rates]\nEUR = 1.08", "crm"),
]


@pytest.mark.parametrize(("toml", "key"), NONSENSE)
def test_nonsense_values_are_refused_with_the_key(
    tmp_path: Path, toml: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tasksync.toml"
    config.write_text(toml + "\n", encoding="utf-8")
    assert main(["-c", str(config), "plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"tasksync: {config}: {key}"), err


def test_sensible_edge_values_are_accepted(tmp_path: Path) -> None:
    config = tmp_path / "tasksync.toml"
    config.write_text(
        "[policy]\nband = 0\nmove_cost = 0\n[priority]\nshares = [0.2, 0.3, 0.5]\n[service]\nmax_move_share = 1\n",
        encoding="utf-8",
    )
    s = load_settings(config)
    assert s.policy.band == 0 and s.priority.shares == [0.2, 0.3, 0.5]
