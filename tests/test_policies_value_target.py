"""``[policy] value_target = "quota"``: each rep's expected-value band around their share of the
team's quota, through the CLI on the local board, for both policies that keep a value band."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tasksync.cli import main
from tasksync.examples import TODAY, generate

DAY = TODAY.isoformat()
VALUE_KINDS = ("above the value band", "below the value band")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return generate(tmp_path / "demo", seed=11, cards=120)


def run(config: Path, *args: str) -> int:
    return main(["--no-color", "-c", str(config), *args])


def configure(config: Path, policy: str, target: str) -> None:
    text = re.sub(r'(?m)^name = "[a-z-]+"', f'name = "{policy}"', config.read_text(encoding="utf-8"))
    text = re.sub(r'(?m)^value_target = "[a-z]+"\n', "", text)
    config.write_text(text.replace("[policy]\n", f'[policy]\nvalue_target = "{target}"\n', 1), encoding="utf-8")


def plan_json(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert run(config, "plan", "--json", "--today", DAY) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def row(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in data["reps"] if r["name"] == name)
    return found


def ev_share(data: dict[str, Any], name: str) -> float:
    """The rep's expected value after the plan ÷ the mean of available reps."""
    avail = [r["expected_value"] for r in data["reps"] if r["available"]]
    return float(row(data, name)["expected_value"]) / (sum(avail) / len(avail))


def mean_quota(config: Path, overrides: dict[str, float]) -> float:
    with (config.parent / "crm" / "reps.csv").open(encoding="utf-8", newline="") as f:
        reps = [r for r in csv.DictReader(f) if r["Available"] == "yes"]
    quotas = [overrides.get(r["Name"], float(r["Quota"])) for r in reps]
    return sum(quotas) / len(quotas)


def test_an_unknown_value_target_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tasksync.toml"
    config.write_text('[policy]\nvalue_target = "median"\n', encoding="utf-8")
    assert main(["-c", str(config), "plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "policy.value_target = 'median'" in err and "'mean'" in err and "'quota'" in err


def test_value_target_mean_is_the_default_and_the_same_for_everyone(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = plan_json(demo, capsys)
    assert data["band"]["value_target"] == "mean"
    team = data["band"]["expected_value"]
    for r in data["reps"]:
        if r["available"]:
            assert r["value_target"] == {
                "weight": 1.0,
                "mean": team["mean"],
                "lower": team["lower"],
                "upper": team["upper"],
            }
        else:
            assert r["value_target"] is None
    assert not any("target:" in c["reason"] for c in data["changes"])


@pytest.mark.parametrize("policy", ["optimal", "balanced"])
def test_a_rep_with_about_twice_the_quota_gets_about_twice_the_expected_value(
    demo: Path, capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    configure(demo, policy, "mean")
    plain = plan_json(demo, capsys)
    assert run(demo, "reps", "quota", "ben", "140000") == 0  # an override of the export, as a manager sets it
    configure(demo, policy, "quota")
    data = plan_json(demo, capsys)
    assert data["band"]["value_target"] == "quota"

    weight = 140000 / mean_quota(demo, {"Ben Brooks": 140000})
    ben = row(data, "Ben Brooks")
    assert ben["value_target"]["weight"] == pytest.approx(weight, abs=1e-3)
    assert weight > 1.8
    # With the plain mean Ben holds about an average share; with his quota, about his weight.
    assert ev_share(plain, "Ben Brooks") < 1.2
    assert ev_share(data, "Ben Brooks") > 1.4

    notes = " ".join(data["plan"]["notes"])
    for r in data["reps"]:
        t = r["value_target"]
        if not r["available"]:
            assert t is None
            continue
        assert t["mean"] == pytest.approx(data["band"]["expected_value"]["mean"] * t["weight"], rel=1e-3)
        if not t["lower"] - 1 <= r["expected_value"] <= t["upper"] + 1:
            # a rep left outside their own band is named in the notes, with their own band and target
            assert re.search(rf"{re.escape(r['name'])} \([\d,]+ (above|below|: band)", notes), (r["name"], notes)

    # Reasons of the value band cite the rep's own band (the same numbers as their row) and target.
    cited = [c for c in data["changes"] if c["reason_kind"] in VALUE_KINDS]
    assert cited, [c["reason"] for c in data["changes"]]
    for c in cited:
        m = re.match(
            r"(.+?) (?:would go )?(above|below) the value band(?: with the plan's other moves)? "
            r"\(([\d,]+) expected value, band ([\d,]+)–([\d,]+), "
            r"target: ([\d.]+)× team mean quota;",
            c["reason"],
        )
        assert m, c["reason"]
        t = row(data, m.group(1))["value_target"]
        assert (m.group(4), m.group(5)) == (f"{t['lower']:,.0f}", f"{t['upper']:,.0f}")
        assert float(m.group(6)) == pytest.approx(t["weight"], abs=0.006)

    # The division settles with per-rep targets too.
    assert run(demo, "apply") == 0
    again = plan_json(demo, capsys)
    assert again["changes"] == [] and again["plan"]["creates"] == []


def test_report_shows_each_reps_value_target(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo, "reps", "quota", "ben", "140000") == 0
    configure(demo, "optimal", "quota")
    capsys.readouterr()
    assert run(demo, "report", "--json", "--today", DAY) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    avail = [r for r in data["reps"] if r["available"]]
    mean = sum(r["expected_value"] for r in avail) / len(avail)
    ben = row(data, "Ben Brooks")["value_target"]
    assert ben["weight"] == pytest.approx(140000 / mean_quota(demo, {"Ben Brooks": 140000}), abs=1e-3)
    assert ben["mean"] == pytest.approx(mean * ben["weight"], rel=1e-3)
    assert ben["lower"] == pytest.approx(ben["mean"] * 0.8, rel=1e-3)
    assert all(r["value_target"] is None for r in data["reps"] if not r["available"])
