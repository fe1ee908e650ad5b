"""The documented example configuration is valid and complete."""

from __future__ import annotations

from pathlib import Path

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
