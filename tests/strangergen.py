"""A big, messy, real-shaped book as a stranger brings it (tests and ``bench``): a Trello board
export of thousands of cards over many lists, tens of reps (hunters and farmers, some away, some
with capacities), hundreds of mostly small accounts, and Salesforce *report* exports that name
accounts and owners rather than numbering them: reps with first and last names in two columns,
amounts with thousand separators and a currency column, years of closed deals, a few typos and
duplicate names.

``write(folder, cards=3000, reps=60, accounts=1000, seed=5)`` writes ``board.json``, ``crm/`` and
``tasksync.toml`` and returns the config's path; ``python tests/strangergen.py DIR [CARDS]``
does the same from the shell.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tasksync.examples import _board

TODAY = date(2026, 12, 1)
SECTORS = ["Retail", "Healthcare", "Manufacturing", "Finance", "Software", "Logistics", "Education"]
REGIONS = ["North", "South", "East", "West", "Central"]
PRODUCTS = ["Core", "Analytics", "Support Plan", "Onboarding"]
STAGES = ["Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review"]
BOARD_LISTS = ["Lead", "Qualified", "Proposal", "Negotiation"]
FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Isabel", "Jonas", "Kate", "Liam",
         "Mei", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tomás", "Uma", "Viktor", "Wen", "Yara"]  # fmt: skip
LAST = ["Alvarez", "Brooks", "Chen", "Dubois", "Eriksen", "Farouk", "García", "Hayashi", "Ivanova", "Jansen",
        "O'Neil", "López", "Wang", "Novak", "Okafor", "Patel", "Quist", "Rossi", "Svensson", "Tanaka"]  # fmt: skip
WORDS_A = ["Blue", "North", "Silver", "Bright", "Green", "Iron", "Summit", "Harbor", "Atlas", "Cedar", "Pioneer",
           "Vertex", "Crescent", "Falcon", "Granite", "Lumen", "Maple", "Orion", "Quartz", "Riverside"]  # fmt: skip
WORDS_B = ["Foods", "Health", "Works", "Capital", "Labs", "Freight", "Systems", "Clinics", "Metals", "Bank",
           "Logistics", "Software", "Markets", "Academy", "Motors", "Energy"]  # fmt: skip
LEGAL = ["", "", "", " Inc.", " LLC", " GmbH", " Ltd"]
RATES = {"EUR": 1.08, "GBP": 1.27}


def _reps(rng: random.Random, n: int) -> list[dict[str, Any]]:
    reps: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(reps) < n:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if f"{first} {last}" in seen:
            continue
        seen.add(f"{first} {last}")
        i = len(reps)
        reps.append(
            {
                "first": first,
                "last": last,
                "name": f"{first} {last}",
                "email": f"{first}.{last}@example.com".lower().replace("'", ""),
                "region": REGIONS[i % len(REGIONS)],
                "role": "farmer" if i % 3 == 2 else "hunter",
                "sectors": rng.sample(SECTORS, 2),
                "capacity": rng.choice([60, 80, 100]) if i % 5 == 1 else None,
                "quota": 40000 + 5000 * (i % 7),
                "available": i % 17 != 9,
            }
        )
    return reps


def _accounts(rng: random.Random, n: int, reps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    accounts: list[dict[str, Any]] = []
    names: set[str] = set()
    while len(accounts) < n:
        base = f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)}"
        name = base + rng.choice(LEGAL) if base not in names else f"{base} {len(accounts) + 1}"
        names.add(base)
        region = rng.choice(REGIONS)
        accounts.append(
            {
                "name": name,
                "sector": rng.choice(SECTORS),
                "employees": int(rng.lognormvariate(4.0, 1.6)) + 3,
                "region": region,
                "owner": rng.choice([r for r in reps if r["region"] == region])["name"],
                "customer": rng.random() < 0.45,
            }
        )
    return accounts


def _money(rng: random.Random, value: float) -> tuple[str, str]:
    """An amount with thousand separators and its currency (mostly USD)."""
    cur = rng.choices(["USD", "EUR", "GBP"], weights=[8, 1, 1])[0]
    local = round(value / (RATES.get(cur, 1.0)), 2)
    return f"{local:,.2f}", cur


def _csv(path: Path, rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))


def write(folder: Path, cards: int = 3000, reps: int = 60, accounts: int = 1000, seed: int = 5) -> Path:
    """The book in ``folder``; returns its config's path."""
    rng = random.Random(seed)
    (folder / "crm").mkdir(parents=True, exist_ok=True)
    team = _reps(rng, reps)
    accs = _accounts(rng, accounts, team)
    skill = {r["name"]: rng.uniform(0.6, 1.4) for r in team}
    footer = [[""], ["Confidential Information - Do Not Distribute"]]
    _csv(
        folder / "crm" / "users.csv",
        [["First Name", "Last Name", "Email", "Region", "Role", "Sectors", "Capacity", "Quota", "Active"]]
        + [[r["first"], r["last"], r["email"], r["region"], r["role"].title(), "; ".join(r["sectors"]),
            "" if r["capacity"] is None else r["capacity"], f"{r['quota']:,}", "yes" if r["available"] else "no"]
           for r in team]
        + [[team[3]["first"], team[3]["last"], team[3]["email"], team[3]["region"], "Hunter", "", "", "", "yes"]],
    )  # fmt: skip
    _csv(
        folder / "crm" / "accounts.csv",
        [["Account Name", "Account Owner", "Industry", "Employees", "Billing Region", "Type"]]
        + [[a["name"], a["owner"], a["sector"], f"{a['employees']:,}", a["region"],
            "Customer - Direct" if a["customer"] else "Prospect"] for a in accs]
        + footer,
    )  # fmt: skip
    history: list[list[Any]] = []
    for i in range(cards * 3):
        acc, rep = rng.choice(accs), rng.choice(team)
        p = 0.3 * skill[rep["name"]] * (1.4 if acc["sector"] in rep["sectors"] else 1.0)
        closed = TODAY - timedelta(days=rng.randint(20, 5 * 365 + 200))
        amount, cur = _money(rng, round(rng.lognormvariate(9.6, 0.8), -2))
        written = acc["name"].upper().replace(" INC.", ", Inc") if i % 23 == 0 else acc["name"]
        history.append([rep["name"], written, f"{acc['name']} - {rng.choice(PRODUCTS)} #{i + 1}",
                        "Closed Won" if rng.random() < min(p, 0.9) else "Closed Lost", amount, cur,
                        f"{closed.month}/{closed.day}/{closed.year}"])  # fmt: skip
    history.sort(key=lambda h: (h[6][-4:], h[1]))
    _csv(
        folder / "crm" / "closed.csv",
        [["Opportunity Owner", "Account Name", "Opportunity Name", "Stage", "Amount", "Opportunity Currency",
          "Close Date"], *history, *footer],
    )  # fmt: skip
    heavy = [r["name"] for r in team[:4]]
    deals: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    # most accounts small: 1-3 open deals; a few big ones with many
    weights = [rng.choice([1, 1, 1, 2, 2, 3]) if i % 40 else rng.randint(8, 25) for i in range(len(accs))]
    while len(deals) < cards:
        acc = rng.choices(accs, weights=weights)[0]
        stage = rng.choices(range(4), weights=[4, 3, 2, 1])[0]
        created = TODAY - timedelta(days=rng.randint(1, 300))
        roll = rng.random()
        owner = "" if stage == 0 and roll < 0.25 else rng.choice(heavy) if roll < 0.4 else acc["owner"]
        name = f"{acc['name']} - {rng.choice(PRODUCTS)}"
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name} {names[name]}"
        value = round(rng.lognormvariate(9.8, 0.9), -2)
        deals.append({"account": acc["name"], "name": name, "stage": stage, "owner": owner, "value": value,
                      "created": created, "close": created + timedelta(days=rng.randint(20, 200))})  # fmt: skip
    typo = {team[-1]["name"]: team[-1]["name"].replace(" ", "  ") + "n"}  # a typo: matches no rep
    rows = []
    for d in deals:
        amount, cur = _money(rng, d["value"])
        owner = typo.get(d["owner"], d["owner"]) if rng.random() < 0.1 else d["owner"]
        rows.append([owner, d["account"], d["name"], STAGES[d["stage"]], amount, cur,
                     f"{d['close'].month}/{d['close'].day}/{d['close'].year}",
                     f"{d['created'].month}/{d['created'].day}/{d['created'].year}"])  # fmt: skip
    _csv(
        folder / "crm" / "opportunities.csv",
        [["Opportunity Owner", "Account Name", "Opportunity Name", "Stage", "Amount", "Opportunity Currency",
          "Close Date", "Created Date"], *rows, *footer],
    )  # fmt: skip
    board_deals = [
        {"Deal ID": d["name"], "Deal Name": d["name"], "Product": "", "Stage": BOARD_LISTS[d["stage"]],
         "Owner": d["owner"], "Created": d["created"].isoformat(), "Close Date": d["close"].isoformat()}
        for d in deals[: int(cards * 0.95)]
    ]  # fmt: skip
    board = _board(rng, [{"Name": r["name"], "Rep ID": r["email"]} for r in team], board_deals)
    # More lists: an inbox, an on-hold list and a Won list holding some cards.
    for extra in ["Inbox", "On Hold", "Won"]:
        pos = 16384 * (len(board["lists"]) + 1)
        board["lists"].append({"id": f"{extra.lower().replace(' ', '')}{seed:016x}"[:24], "name": extra,
                               "closed": False, "pos": pos, "idBoard": board["id"]})  # fmt: skip
    for c in board["cards"][5::37]:
        c["idList"] = board["lists"][-2]["id"]
    config = folder / "tasksync.toml"
    config.write_text(
        'connector = "local"\n[local]\npath = "board.json"\n[link]\nby = "custom_field"\nfield = "CRM ID"\n'
        '[priority]\nfield = "Priority"\ntiers = ["P1", "P2", "P3", "P4"]\n'
        '[policy]\nname = "optimal"\n[create]\nenabled = true\nstages = ["Prospecting", "Qualification"]\n'
        '[crm]\nfolder = "crm"\ncurrency = "USD"\n[crm.rates]\nEUR = 1.08\nGBP = 1.27\n'
        '[crm.columns.accounts]\nregion = "Billing Region"\n'
        '[crm.files]\nreps = "users.csv"\naccounts = "accounts.csv"\ndeals = "opportunities.csv"\n'
        'history = "closed.csv"\n'
        '[stages]\nProspecting = "Lead"\nQualification = "Qualified"\n"Proposal/Price Quote" = "Proposal"\n'
        '"Negotiation/Review" = "Negotiation"\n',
        encoding="utf-8",
    )
    (folder / "board.json").write_text(json.dumps(board, ensure_ascii=False), encoding="utf-8")
    return config


if __name__ == "__main__":
    print(write(Path(sys.argv[1]), *(int(a) for a in sys.argv[2:])))
