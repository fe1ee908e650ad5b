"""Benchmark: the scheduled sync service (``tasksync serve``).

1. Latency from a card appearing to its assignment
   - by polling (interval 60 s) on the local board and on the fake Trello: the card appears at a
     random moment between two iterations (simulated clock); latency = wait for the next
     iteration (simulated) + the real time that iteration took;
   - with webhooks (real time, interval still 60 s): the card is added, a signed Trello
     webhook is posted to the receiver, and the clock runs until the card has an owner.
2. Requests per hour on an idle board (fake Trello over loopback, interval 60 s, periodic
   full read every hour): every request the fake saw.
3. Memory over 10,000 loop iterations on an idle local board (simulated clock, so the periodic
   full reads and plans happen too): tracemalloc's current size after 1,000 and after 10,000.

Targets: assigned within one interval by polling, within 5 s with webhooks; an idle board costs
at most one request per interval; memory flat.

    PYTHONPATH=src python bench/bench_service.py [--trials 20] [--iterations 10000] [--cards 120]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tomllib
import tracemalloc
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from tasksync.connectors.http import LimiterRegistry, ScaledClock, trello_session
from tasksync.connectors.trello import TrelloConnector
from tasksync.examples import TODAY, generate
from tasksync.service.logs import configure_logging
from tasksync.service.loop import SyncService
from tasksync.service.webhooks import HookServer, trello_signature
from tasksync.settings import Secrets, Settings, load_settings, settings_from_mapping
from tasksync.testing.fake_trello import FakeTrello

KEY, TOKEN, SECRET = "fake-key", "fake-token", "bench-app-secret"


class SimClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Row:
    metric: str
    value: str
    target: str
    ok: bool


# ---------------------------------------------------------------------- boards
def demo(root: Path, name: str, cards: int, deals: int) -> Path:
    folder = root / name
    generate(folder, cards=cards)
    path = folder / "crm" / "deals.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    template = dict(zip(header, lines[1].split(","), strict=True))
    with path.open("a", encoding="utf-8") as fh:
        for i in range(deals):  # deals in Proposal with no card yet: the cards people will add
            row = {**template, "Deal ID": f"B{i:05d}", "Deal Name": f"Bench deal {i}", "Stage": "Proposal", "Owner": ""}
            fh.write(",".join(row[h] for h in header) + "\n")
    return folder


def add_local_card(folder: Path, deal_id: str) -> str:
    path = folder / "board.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    lst = next(lst for lst in data["lists"] if lst["name"] == "Proposal")
    link = next(f for f in data["customFields"] if f["name"] == "CRM ID")
    card_id = f"be{len(data['cards']):022x}"
    data["cards"].append(
        {"id": card_id, "name": f"Bench deal {deal_id}", "desc": "", "idBoard": data["id"], "idList": lst["id"],
         "idMembers": [], "idLabels": [], "due": None, "closed": False, "pos": 999999}
    )  # fmt: skip
    data["customFieldItems"].append(
        {"id": f"bf{len(data['cards']):022x}", "idModel": card_id, "idCustomField": link["id"],
         "value": {"text": deal_id}}
    )  # fmt: skip
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)
    return card_id


def local_owner(folder: Path, card_id: str) -> list[str]:
    data = json.loads((folder / "board.json").read_text(encoding="utf-8"))
    return next(c["idMembers"] for c in data["cards"] if c["id"] == card_id)


def trello_settings(folder: Path, fake: FakeTrello, url: str) -> Settings:
    board_id = fake.add_board(json.loads((folder / "board.json").read_text(encoding="utf-8")))
    raw = tomllib.loads((folder / "tasksync.toml").read_text(encoding="utf-8"))
    raw["connector"] = "trello"
    raw["trello"] = {"boards": [board_id], "api_url": url}
    settings = settings_from_mapping(raw, base_dir=folder)
    settings.secrets = Secrets(trello_key=KEY, trello_token=TOKEN, trello_api_url=url)  # type: ignore[arg-type]
    return settings


def trello_connector(settings: Settings, url: str, registry: LimiterRegistry) -> TrelloConnector:
    return TrelloConnector(settings, session=trello_session(url, registry=registry, timeout=(2.0, 10.0)))


def add_trello_card(fake: FakeTrello, url: str, settings: Settings, deal_id: str) -> str:
    board = fake.board(settings.trello.boards[0])
    lst = next(lst for lst in board["lists"] if lst["name"] == "Proposal")
    link = next(f for f in board["customFields"] if f["name"] == "CRM ID")
    auth = {"key": KEY, "token": TOKEN}
    card = requests.post(f"{url}/cards", params={**auth, "idList": lst["id"], "name": deal_id}, timeout=5).json()
    requests.put(
        f"{url}/cards/{card['id']}/customField/{link['id']}/item", params=auth, json={"value": {"text": deal_id}},
        timeout=5,
    ).raise_for_status()  # fmt: skip
    return str(card["id"])


def settle(svc: SyncService, clock: SimClock) -> None:
    for _ in range(8):
        res = svc.run_once()
        if res.error or res.paused:
            raise SystemExit(f"the service did not start cleanly: {res.error or res.paused}")
        if not res.plan_id:
            return
        clock.sleep(res.delay)
    raise SystemExit("the service did not settle")


# ---------------------------------------------------------------------- 1. latency
def polling_latency(
    svc: SyncService, clock: SimClock, add: Callable[[str], str], owner: Callable[[str], list[str]], trials: int
) -> list[float]:
    rng = random.Random(7)
    out = []
    for i in range(trials):
        res = svc.run_once()  # an iteration happens...
        offset = rng.uniform(0, res.delay)
        clock.sleep(offset)  # ...the card appears some time before the next one
        card_id = add(f"B{i:05d}")
        appeared = clock()
        clock.sleep(res.delay - offset)
        for _ in range(5):
            t = time.perf_counter()
            res = svc.run_once()
            spent = time.perf_counter() - t
            if owner(card_id):
                break
            clock.sleep(res.delay)
        else:
            raise SystemExit(f"card {card_id} not assigned after five intervals")
        out.append(clock() - appeared + spent)
    return out


def webhook_latency(
    svc: SyncService, add: Callable[[str], str], owner: Callable[[str], list[str]], trials: int, first: int
) -> list[float]:
    hooks = HookServer("127.0.0.1", 0, on_change=svc.trigger, trello_secret=SECRET).start()
    url = f"http://127.0.0.1:{hooks.port}/trello"
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    out = []
    try:
        while svc.completed < 1:
            time.sleep(0.01)
        for i in range(trials):
            done = svc.completed
            while svc.completed == done and svc.last_result is not None and svc.last_result.plan_id:
                time.sleep(0.01)
            time.sleep(0.2)  # the loop is asleep for the rest of its 60 s interval
            card_id = add(f"B{first + i:05d}")
            t = time.perf_counter()
            body = json.dumps({"action": {"type": "createCard", "data": {"card": {"id": card_id}}}}).encode()
            signature = trello_signature(SECRET, body, url)
            req = urllib.request.Request(url, data=body, headers={"X-Trello-Webhook": signature})
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200
            while not owner(card_id):
                if time.perf_counter() - t > 30:
                    raise SystemExit("webhook did not lead to an assignment within 30 s")
                time.sleep(0.005)
            out.append(time.perf_counter() - t)
    finally:
        svc.stop()
        thread.join(timeout=60)
        hooks.stop()
    return out


# ---------------------------------------------------------------------- 2. idle requests
def idle_requests(svc: SyncService, clock: SimClock, fake: FakeTrello, hours: int = 2) -> tuple[int, int]:
    fake.reset_log()
    n = int(hours * 3600 / svc.cfg.interval)
    for _ in range(n):
        clock.sleep(svc.cfg.interval)
        res = svc.run_once()
        if res.error:
            raise SystemExit(res.error)
    return len(fake.log), n


# ---------------------------------------------------------------------- 3. memory
def memory(folder: Path, iterations: int) -> tuple[list[tuple[int, float]], float, int]:
    """tracemalloc's current size (KiB) at 10%, 50% and 100% of ``iterations``; us/iteration; reads."""
    clock = SimClock()
    svc = SyncService(load_settings(folder / "tasksync.toml"), clock=clock, sleep=clock.sleep, today=TODAY)
    settle(svc, clock)
    marks = {max(1, iterations // 10), max(1, iterations // 2), iterations}
    points: list[tuple[int, float]] = []
    tracemalloc.start()
    reads = 0
    t = time.perf_counter()
    for i in range(1, iterations + 1):
        clock.sleep(svc.cfg.interval)
        reads += svc.run_once().read
        if i in marks:
            gc.collect()
            points.append((i, tracemalloc.get_traced_memory()[0] / 1024))
    elapsed = time.perf_counter() - t
    tracemalloc.stop()
    svc.close()
    return points, elapsed / iterations * 1e6, reads


# ---------------------------------------------------------------------- main
def fmt(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return f"mean {statistics.mean(xs):.2f} s, p95 {p95:.2f} s, max {xs[-1]:.2f} s (n={len(xs)})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--webhook-trials", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=10_000)
    ap.add_argument("--cards", type=int, default=120)
    args = ap.parse_args(argv)
    devnull = Path(os.devnull).open("w")  # noqa: SIM115 - the logs' sink for the whole run
    configure_logging(json_lines=True, stream=devnull)
    logging.getLogger("tasksync").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="bench-service-"))
    rows: list[Row] = []
    try:
        deals = args.trials + args.webhook_trials + 5
        interval = 60.0

        # -- local board
        folder = demo(root, "local", args.cards, deals)
        clock = SimClock()
        svc = SyncService(load_settings(folder / "tasksync.toml"), clock=clock, sleep=clock.sleep, today=TODAY)
        settle(svc, clock)
        lat = polling_latency(svc, clock, lambda d: add_local_card(folder, d), lambda c: local_owner(folder, c),
                              args.trials)  # fmt: skip
        rows.append(Row("local: new card -> owner, polling", fmt(lat), f"<= {interval:.0f} s", max(lat) <= interval))
        svc.close()
        live = SyncService(load_settings(folder / "tasksync.toml"), today=TODAY)
        lat = webhook_latency(live, lambda d: add_local_card(folder, d), lambda c: local_owner(folder, c),
                              args.webhook_trials, args.trials)  # fmt: skip
        rows.append(Row("local: new card -> owner, webhook", fmt(lat), "<= 5 s", max(lat) <= 5))
        live.close()

        # -- fake Trello over loopback (rate-limit windows 20x faster, fake and limiter alike)
        rate_clock = ScaledClock(20.0)
        fake = FakeTrello(key=KEY, tokens=[TOKEN], clock=rate_clock)
        registry = LimiterRegistry(rate_clock)
        tfolder = demo(root, "trello", args.cards, deals)
        with fake.serve() as url:
            settings = trello_settings(tfolder, fake, url)
            clock = SimClock()
            svc = SyncService(settings, connector=trello_connector(settings, url, registry), clock=clock,
                              sleep=clock.sleep, today=TODAY)  # fmt: skip
            settle(svc, clock)

            def owner(card_id: str) -> list[str]:
                return list(fake.card(card_id)["idMembers"])

            lat = polling_latency(svc, clock, lambda d: add_trello_card(fake, url, settings, d), owner, args.trials)
            rows.append(Row("Trello: new card -> owner, polling", fmt(lat), f"<= {interval:.0f} s",
                            max(lat) <= interval))  # fmt: skip
            settle(svc, clock)
            total, n = idle_requests(svc, clock, fake)
            per_hour = total / (n * interval / 3600)
            rows.append(Row("Trello: requests per idle hour", f"{per_hour:.1f} ({total} in {n} intervals)",
                            f"<= {3600 / interval:.0f}", total <= n))  # fmt: skip
            svc.close()

            live = SyncService(settings, connector=trello_connector(settings, url, registry), today=TODAY)
            lat = webhook_latency(live, lambda d: add_trello_card(fake, url, settings, d), owner,
                                  args.webhook_trials, args.trials)  # fmt: skip
            rows.append(Row("Trello: new card -> owner, webhook", fmt(lat), "<= 5 s", max(lat) <= 5))
            live.close()

        # -- memory over many iterations
        mfolder = demo(root, "memory", args.cards, 0)
        points, per_iter, reads = memory(mfolder, args.iterations)
        at50, at100 = points[-2][1], points[-1][1]
        rows.append(
            Row(
                f"memory over {args.iterations:,} iterations",
                " -> ".join(f"{kib:,.0f} KiB @{i:,}" for i, kib in points)
                + f"; {per_iter:,.0f} us/iteration; {reads} full reads",
                "flat (2nd half < +64 KiB)",
                at100 - at50 < 64,
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    width = max(len(r.metric) for r in rows)
    vwidth = max(len(r.value) for r in rows)
    print(f"{'metric':{width}}  {'result':{vwidth}}  {'target':18}  ok")
    print(f"{'-' * width}  {'-' * vwidth}  {'-' * 18}  --")
    for r in rows:
        print(f"{r.metric:{width}}  {r.value:{vwidth}}  {r.target:18}  {'yes' if r.ok else 'NO'}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
