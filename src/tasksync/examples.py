"""The built-in offline example: a seeded sales board and the CRM exports behind it.

``generate(folder)`` writes ``board.json`` (a Trello board export), ``crm/*.csv`` and a
``tasksync.toml`` that ties them together. The same seed always gives the same files, so the
committed copy in ``examples/demo`` can be checked against it.
"""

from __future__ import annotations

import csv
import json
import math
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

__all__ = ["DEMO_CONFIG", "generate"]

TODAY = date(2026, 11, 2)  # fixed so the example does not drift with the calendar
SECTORS = ["Retail", "Healthcare", "Manufacturing", "Finance", "Software", "Logistics"]
REGIONS = ["North", "South", "East", "West"]
PRODUCTS = ["Core", "Analytics", "Support Plan"]
STAGES = ["Lead", "Qualified", "Proposal", "Negotiation"]
TIERS = ["P1", "P2", "P3", "P4"]

FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dmitri",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Isabel",
    "Jonas",
    "Katherine",
    "Liam",
    "Mei",
    "Nadia",
]
LAST = [
    "Alvarez",
    "Brooks",
    "Chen",
    "Dubois",
    "Eriksen",
    "Farouk",
    "Garcia",
    "Hayashi",
    "Ivanova",
    "Jansen",
    "O'Neil",
    "Lopez",
    "Wang",
    "Novak",
]
COMPANY_A = [
    "Blue",
    "North",
    "Silver",
    "Bright",
    "Green",
    "Iron",
    "Summit",
    "Harbor",
    "Atlas",
    "Cedar",
    "Pioneer",
    "Vertex",
    "Crescent",
    "Falcon",
    "Granite",
    "Lumen",
]
COMPANY_B = [
    "Foods",
    "Health",
    "Works",
    "Capital",
    "Labs",
    "Freight",
    "Systems",
    "Retail",
    "Clinics",
    "Metals",
    "Bank",
    "Logistics",
    "Software",
    "Markets",
]

DEMO_CONFIG = """\
# tasksync configuration for the built-in example (a local board file).
# Every key is documented in config/tasksync.example.toml.
connector = "local"
state_path = ".tasksync/state.sqlite3"

[local]
path = "board.json"

[link]
by = "custom_field"      # cards carry the CRM deal id in the "CRM ID" custom field
field = "CRM ID"

[priority]
field = "Priority"
tiers = ["P1", "P2", "P3", "P4"]

[policy]
name = "optimal"
band = 0.10              # every available rep within ±10% of the mean workload
pin_label = "pinned"

[[policy.segments]]
name = "Enterprise"
size_bands = ["enterprise"]

[[policy.segments]]
name = "Strategic"
min_value = 60000

[create]
enabled = true           # open deals without a card get one...
stages = ["Lead", "Qualified"]   # ...when they are at these CRM stages

[crm]
folder = "crm"

# CRM stage -> board list
[stages]
Lead = "Lead"
Qualified = "Qualified"
Proposal = "Proposal"
Negotiation = "Negotiation"

# Reps whose board name differs from the CRM's
[members]
"Katherine O'Neil" = "kateoneil"
"""


def _oid(rng: random.Random, when: date) -> str:
    ts = int((when - date(1970, 1, 1)).total_seconds())
    return f"{ts:08x}{rng.getrandbits(64):016x}"


def generate(folder: Path, seed: int = 7, cards: int = 320) -> Path:
    """Write the example into ``folder`` (created if needed) and return the config's path."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "crm").mkdir(exist_ok=True)
    reps = _reps(rng)
    skill = {r["Rep ID"]: rng.uniform(0.7, 1.3) for r in reps}
    accounts = _accounts(rng, reps)
    history = _history(rng, reps, accounts, skill)
    deals = _deals(rng, reps, accounts, cards + 16)

    _write_csv(folder / "crm" / "reps.csv", reps)
    _write_csv(folder / "crm" / "accounts.csv", accounts)
    _write_csv(folder / "crm" / "deals.csv", deals)
    _write_csv(folder / "crm" / "history.csv", history)

    board = _board(rng, reps, deals[:cards])
    with (folder / "board.json").open("w", encoding="utf-8") as fh:
        json.dump(board, fh, ensure_ascii=False, indent=1)
    config = folder / "tasksync.toml"
    config.write_text(DEMO_CONFIG, encoding="utf-8")
    return config


def _reps(rng: random.Random) -> list[dict[str, Any]]:
    """Twelve reps: a mix of hunters and farmers over four regions, one away."""
    reps: list[dict[str, Any]] = []
    for i in range(12):
        name = f"{FIRST[i]} {LAST[i]}"
        reps.append(
            {
                "Rep ID": f"R{i + 1:03d}",
                "Name": name,
                "Email": f"{FIRST[i].lower()}.{LAST[i].lower().replace(chr(39), '')}@example.com",
                "Region": REGIONS[i % 4],
                "Role": "hunter" if i % 3 != 2 else "farmer",
                "Sectors": "; ".join(rng.sample(SECTORS, 2)),
                "Capacity": 34 if i % 4 else 40,
                "Quota": 60000 + 5000 * (i % 5),
                "Available": "no" if i == 9 else "yes",
            }
        )
    return reps


def _accounts(rng: random.Random, reps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """160 accounts of every sector, region and size, each owned by a rep of its region."""
    accounts: list[dict[str, Any]] = []
    for i in range(160):
        sector = rng.choice(SECTORS)
        region = rng.choice(REGIONS)
        employees = int(math.exp(rng.uniform(math.log(8), math.log(20000))))
        accounts.append(
            {
                "Account ID": f"A{i + 1:04d}",
                "Account Name": f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)} {i + 1}",
                "Sector": sector,
                "Employees": employees,
                "Region": region,
                "Owner": rng.choice([r for r in reps if r["Region"] == region])["Name"],
                "Customer": "yes" if rng.random() < 0.4 else "no",
            }
        )

    return accounts


def _history(
    rng: random.Random, reps: list[dict[str, Any]], accounts: list[dict[str, Any]], skill: dict[str, float]
) -> list[dict[str, Any]]:
    """A year of closed deals, won more often by skilled reps in their own sectors."""
    sector_rate = {s: rng.uniform(0.2, 0.45) for s in SECTORS}
    product_rate = {"Core": 1.0, "Analytics": 0.8, "Support Plan": 1.25}
    history: list[dict[str, Any]] = []
    for i in range(900):
        acc = rng.choice(accounts)
        rep = rng.choice(reps)
        product = rng.choice(PRODUCTS)
        p = sector_rate[acc["Sector"]] * product_rate[product] * skill[rep["Rep ID"]]
        if acc["Sector"] in rep["Sectors"]:
            p *= 1.3
        closed = TODAY - timedelta(days=rng.randint(1, 365))
        history.append(
            {
                "Deal ID": f"H{i + 1:05d}",
                "Account ID": acc["Account ID"],
                "Amount": round(rng.lognormvariate(9.8, 0.8), -2),
                "Stage": "Closed Won" if rng.random() < min(p, 0.9) else "Closed Lost",
                "Created": (closed - timedelta(days=rng.randint(10, 120))).isoformat(),
                "Closed": closed.isoformat(),
                "Product": product,
                "Owner": rep["Name"],
                "Sector": acc["Sector"],
                "Region": acc["Region"],
            }
        )
    history.sort(key=lambda h: h["Closed"])

    return history


def _deals(
    rng: random.Random, reps: list[dict[str, Any]], accounts: list[dict[str, Any]], n_deals: int
) -> list[dict[str, Any]]:
    """Open deals: owners lopsided (three reps hold far too much), some leads unowned."""
    heavy = [reps[0]["Name"], reps[1]["Name"], reps[4]["Name"]]
    deals: list[dict[str, Any]] = []
    for i in range(n_deals):
        acc = rng.choice(accounts)
        stage = rng.choices(STAGES, weights=[4, 3, 2, 1])[0]
        created = TODAY - timedelta(days=rng.randint(1, 200))
        roll = rng.random()
        if stage == "Lead" and roll < 0.3:
            owner = ""
        elif roll < 0.45:
            owner = rng.choice(heavy)
        else:
            owner = acc["Owner"]
        deals.append(
            {
                "Deal ID": f"D{i + 1:05d}",
                "Account ID": acc["Account ID"],
                "Deal Name": f"{acc['Account Name']} - {rng.choice(PRODUCTS)}",
                "Amount": round(rng.lognormvariate(9.8, 0.9), -2),
                "Stage": stage,
                "Created": created.isoformat(),
                "Close Date": (created + timedelta(days=rng.randint(30, 150))).isoformat(),
                "Product": rng.choice(PRODUCTS),
                "Owner": owner,
            }
        )

    return deals


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _board(rng: random.Random, reps: list[dict[str, Any]], deals: list[dict[str, Any]]) -> dict[str, Any]:
    start = TODAY - timedelta(days=400)
    board_id = _oid(rng, start)
    lists = [
        {
            "id": _oid(rng, start),
            "name": s,
            "closed": False,
            "pos": 16384 * (i + 1),
            "idBoard": board_id,
        }
        for i, s in enumerate(STAGES)
    ]
    list_id = {str(lst["name"]): str(lst["id"]) for lst in lists}
    members, member_of = _members(rng, reps, start)
    labels = [
        {"id": _oid(rng, start), "idBoard": board_id, "name": "pinned", "color": "purple"},
        {"id": _oid(rng, start), "idBoard": board_id, "name": "renewal", "color": "green"},
    ]
    prio_field, link_field = _custom_fields(rng, board_id, start)
    cards, items = _cards(rng, deals, board_id, list_id, member_of, labels[0]["id"], prio_field, link_field)
    # A few cards that are not CRM records at all: reported as unlinked, left as they are.
    for j, title in enumerate(["Follow up trade show contacts", "Refresh pricing sheet", "Quarterly review prep"]):
        cards.append(
            {
                "id": _oid(rng, TODAY - timedelta(days=20 + j)),
                "name": title,
                "desc": "",
                "idBoard": board_id,
                "idList": lists[0]["id"],
                "idMembers": [members[j]["id"]],
                "idLabels": [],
                "due": None,
                "closed": False,
                "pos": 16384 * (len(cards) + 1),
                "dateLastActivity": f"{(TODAY - timedelta(days=3)).isoformat()}T09:00:00.000Z",
            }
        )
    return {
        "id": board_id,
        "name": "Sales pipeline (example)",
        "closed": False,
        "lists": lists,
        "cards": cards,
        "members": members,
        "labels": labels,
        "customFields": [prio_field, link_field],
        "customFieldItems": items,
    }


def _members(
    rng: random.Random, reps: list[dict[str, Any]], start: date
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A board member per rep (one under a short name), and rep name -> member id."""
    members = []
    member_of: dict[str, str] = {}
    for r in reps:
        first, last = r["Name"].split(" ", 1)
        full = "Kate O'Neil" if first == "Katherine" else r["Name"]
        username = (full.split(" ")[0] + last).lower().replace("'", "")
        mid = _oid(rng, start)
        members.append({"id": mid, "fullName": full, "username": username})
        member_of[r["Name"]] = mid
    return members, member_of


def _custom_fields(rng: random.Random, board_id: str, start: date) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Priority list field (one option per tier) and the CRM ID text field."""
    prio_field: dict[str, Any] = {
        "id": _oid(rng, start),
        "idModel": board_id,
        "modelType": "board",
        "name": "Priority",
        "type": "list",
        "pos": 16384,
        "options": [
            {
                "id": _oid(rng, start),
                "idCustomField": "",
                "value": {"text": t},
                "color": c,
                "pos": 16384 * (i + 1),
            }
            for i, (t, c) in enumerate(zip(TIERS, ["red", "orange", "yellow", "blue"], strict=True))
        ],
    }
    for opt in prio_field["options"]:
        opt["idCustomField"] = prio_field["id"]
    link_field = {
        "id": _oid(rng, start),
        "idModel": board_id,
        "modelType": "board",
        "name": "CRM ID",
        "type": "text",
        "pos": 32768,
    }
    return prio_field, link_field


def _cards(
    rng: random.Random,
    deals: list[dict[str, Any]],
    board_id: str,
    list_id: dict[str, str],
    member_of: dict[str, str],
    pinned: str,
    prio_field: dict[str, Any],
    link_field: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A card per open deal (its CRM ID set, half with a priority, a few pinned) and the cards'
    custom field items."""
    cards: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for i, d in enumerate(deals):
        created = date.fromisoformat(d["Created"])
        cid = _oid(rng, created)
        label_ids = [pinned] if i % 41 == 5 else []
        cards.append(
            {
                "id": cid,
                "name": d["Deal Name"],
                "desc": f"Deal {d['Deal ID']} · {d['Product']}",
                "idBoard": board_id,
                "idList": list_id[d["Stage"]],
                "idMembers": [member_of[d["Owner"]]] if d["Owner"] else [],
                "idLabels": label_ids,
                "due": f"{d['Close Date']}T12:00:00.000Z",
                "closed": False,
                "pos": 16384 * (i + 1),
                "dateLastActivity": f"{created.isoformat()}T09:00:00.000Z",
            }
        )
        items.append(
            {
                "id": _oid(rng, created),
                "idCustomField": link_field["id"],
                "idModel": cid,
                "modelType": "card",
                "value": {"text": d["Deal ID"]},
            }
        )
        if rng.random() < 0.5:
            items.append(
                {
                    "id": _oid(rng, created),
                    "idCustomField": prio_field["id"],
                    "idModel": cid,
                    "modelType": "card",
                    "idValue": rng.choice(prio_field["options"])["id"],
                }
            )
    return cards, items
