"""A cluster on the fake Trello, for the tests and ``bench/bench_cluster.py``: boards generated
from the example, a ``cluster.toml`` listing them (several tokens, one API key), worker processes,
and readings of the fake's request log (per-token peaks, writes sent twice).

Like :mod:`tasksync.testing`, this is support code for checking the cluster, not used by it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tasksync.cluster.config import load_cluster
from tasksync.cluster.jobs import Cluster
from tasksync.examples import TODAY, generate
from tasksync.testing.fake_asana import FakeAsana
from tasksync.testing.fake_trello import FakeTrello, LoggedRequest

__all__ = [
    "ClusterSetup",
    "asana_peaks",
    "asana_writes",
    "board_of",
    "make_cluster",
    "max_in_window",
    "per_token_peaks",
    "writes_per_target",
]

KEY = "fake-cluster-key"
SRC = Path(__file__).resolve().parents[2]


@dataclass
class ClusterSetup:
    """Boards generated from the example, served by one fake Trello, listed in a cluster.toml."""

    root: Path
    cluster_file: Path
    keys: list[str]
    boards: dict[str, str]  # key -> Trello board id or Asana project gid
    tokens: dict[str, str]  # key -> its token
    env: dict[str, str]
    trello_keys: set[str] = field(default_factory=set)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start_worker(self, threads: int = 2, *extra: str) -> subprocess.Popen[bytes]:
        """A worker process (``tasksync-cluster worker``) logging to ``worker<N>.log``."""
        log = (self.root / f"worker{len(self.procs)}.log").open("wb")
        self._logs.append(log)
        cmd = [sys.executable, "-m", "tasksync.cluster", "-c", str(self.cluster_file), "worker"]
        cmd += ["--threads", str(threads), "--today", TODAY.isoformat(), "--heartbeat-timeout", "10", *extra]
        p = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        self.procs.append(p)
        return p

    def start_scheduler(self) -> subprocess.Popen[bytes]:
        """A scheduler process (``tasksync-cluster scheduler``) logging to ``scheduler<N>.log``."""
        log = (self.root / f"scheduler{len(self.procs)}.log").open("wb")
        self._logs.append(log)
        cmd = [sys.executable, "-m", "tasksync.cluster", "-c", str(self.cluster_file), "scheduler"]
        p = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        self.procs.append(p)
        return p

    def cluster(self) -> Cluster:
        """The cluster on this setup's servers, for enqueueing and reading status."""
        saved = {k: os.environ.get(k) for k in ("TASKSYNC_REDIS_URL", "TASKSYNC_DATABASE_URL")}
        os.environ.update({k: self.env[k] for k in saved})
        try:
            return Cluster(load_cluster(self.cluster_file))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def stop_workers(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self._logs:
            log.close()

    def logs(self) -> str:
        out = []
        for f in sorted([*self.root.glob("worker*.log"), *self.root.glob("scheduler*.log")]):
            out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(out)


def make_cluster(
    root: Path,
    fake: FakeTrello,
    url: str,
    boards: int,
    *,
    cards: int,
    tokens: int,
    redis_url: str,
    database_url: str,
    creates_every: int = 5,
    asana: FakeAsana | None = None,
    asana_projects: int = 0,
    asana_rpm: int = 150,
    interval: float = 60.0,
    policy: str = "optimal",
) -> ClusterSetup:
    """``boards`` boards of ``cards`` cards, shared round-robin by ``tokens`` tokens (one API key);
    every ``creates_every``-th board also creates cards for new CRM leads. With ``asana``, the
    last ``asana_projects`` of them are Asana projects in that fake instead, on ``tokens``
    tokens of their own, each allowed ``asana_rpm`` requests per minute."""
    run = uuid.uuid4().hex[:8]
    env, trello_tokens, asana_tokens = _environment(run, fake, url, tokens, asana)
    env |= {"TASKSYNC_REDIS_URL": redis_url, "TASKSYNC_DATABASE_URL": database_url}
    lines = [f"interval = {interval}", f'queue = "q{run}"', "lease_retry = 1", ""]
    keys: list[str] = []
    board_ids: dict[str, str] = {}
    token_of: dict[str, str] = {}
    first_asana = boards - asana_projects if asana is not None else boards
    for i in range(boards):
        key = f"board{i:03d}/tasksync.toml"
        on_asana = asana if i >= first_asana else None
        board_ids[key] = _add_board(root / f"board{i:03d}", i, fake, on_asana, cards, creates_every, asana_rpm, policy)
        token_of[key] = (asana_tokens if on_asana else trello_tokens)[i % tokens]
        keys.append(key)
        prefix = f"TASKSYNC_{'A' if on_asana else 'T'}{i % tokens}_"
        lines += ["[[board]]", f'config = "{key}"', f'secrets_prefix = "{prefix}"', ""]
    cluster_file = root / "cluster.toml"
    cluster_file.write_text("\n".join(lines), encoding="utf-8")
    return ClusterSetup(root, cluster_file, keys, board_ids, token_of, env, set(keys[:first_asana]))


def _environment(
    run: str, fake: FakeTrello, url: str, tokens: int, asana: FakeAsana | None
) -> tuple[dict[str, str], list[str], list[str]]:
    """The worker processes' environment: ``tokens`` Trello tokens of one key (``TASKSYNC_T<i>_*``)
    and as many Asana tokens (``TASKSYNC_A<i>_*``), each known to its fake; and the tokens."""
    names = [f"tok-{run}-{i}" for i in range(tokens)]
    fake.tokens.update(names)
    env = dict(os.environ)
    for i, tok in enumerate(names):
        env |= {
            f"TASKSYNC_T{i}_TRELLO_KEY": KEY,
            f"TASKSYNC_T{i}_TRELLO_TOKEN": tok,
            f"TASKSYNC_T{i}_TRELLO_API_URL": url,
        }
    asana_names = [f"asana-{run}-{i}" for i in range(tokens)] if asana is not None else []
    for i, tok in enumerate(asana_names):
        assert asana is not None
        asana.tokens.add(tok)
        env |= {f"TASKSYNC_A{i}_ASANA_TOKEN": tok, f"TASKSYNC_A{i}_ASANA_API_URL": asana.url}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env, names, asana_names


def _add_board(
    folder: Path,
    i: int,
    fake: FakeTrello,
    asana: FakeAsana | None,
    cards: int,
    creates_every: int,
    asana_rpm: int,
    policy: str,
) -> str:
    """Board number ``i``, generated from the example into ``folder`` and served by the fake
    Trello (or, with ``asana``, as a project of the fake Asana); returns its board id or project gid."""
    creates = i % creates_every == 0
    # A board that creates cards: Lead deals only, and at least 8 cards, so that its first sync
    # creates fewer cards than the board holds (the service's max_create_share guard).
    config = generate(folder, seed=100 + i, cards=max(cards, 8) if creates else cards)
    data = json.loads((folder / "board.json").read_text(encoding="utf-8"))
    text = config.read_text(encoding="utf-8").replace('stages = ["Lead", "Qualified"]', 'stages = ["Lead"]')
    text = text.replace("enabled = true", f"enabled = {'true' if creates else 'false'}")
    text = text.replace('name = "optimal"', f'name = "{policy}"')
    if asana is not None:
        ids = asana.seed_from_trello_board(data)
        text = text.replace('connector = "local"', 'connector = "asana"')
        text += f'\n[asana]\nproject = "{ids.project}"\nworkspace = "{ids.workspace}"\n'
        text += f"requests_per_minute = {asana_rpm}\n"
        remote = ids.project
    else:
        # The generator reuses list ids from board to board; the log tells boards apart by them.
        renamed = {lst["id"]: fake.new_id() for lst in data["lists"]}
        for lst in data["lists"]:
            lst["id"] = renamed[lst["id"]]
        for card in data["cards"]:
            card["idList"] = renamed.get(card["idList"], card["idList"])
        remote = fake.add_board(data)
        text = text.replace('connector = "local"', 'connector = "trello"')
        text += f'\n[trello]\nboards = ["{remote}"]\n'
    config.write_text(text + "\n[service]\nmax_create_share = 1.0\n", encoding="utf-8")
    return remote


# ---------------------------------------------------------------------------------------------- the fake's log
def board_of(fake: FakeTrello, req: LoggedRequest) -> str | None:
    """The Trello board a logged request worked on (from its path, or the list it posts to)."""
    parts = req.path.strip("/").split("/")
    if parts[0] == "boards" and len(parts) > 1:
        b = fake._find_board(parts[1])
        return None if b is None else str(b["id"])
    if parts[0] == "cards" and len(parts) > 1:
        card = fake.cards.get(parts[1])
        return None if card is None else str(card["idBoard"])
    if parts[0] == "cards" and req.method == "POST":
        list_id = req.query.get("idList") or req.body.get("idList")
        for b in fake.boards.values():
            if any(lst["id"] == list_id for lst in b["lists"]):
                return str(b["id"])
    return None


def max_in_window(stamps: list[float], window: float) -> int:
    """The most stamps in any ``window``-second span."""
    best, q = 0, deque[float]()
    for t in sorted(stamps):
        q.append(t)
        while q[0] <= t - window:
            q.popleft()
        best = max(best, len(q))
    return best


def per_token_peaks(fake: FakeTrello, setup: ClusterSetup, window: float = 10.0) -> dict[str, int]:
    """Per token, the most requests the fake saw in any ``window`` seconds (from its log)."""
    token_of_board = {bid: setup.tokens[key] for key, bid in setup.boards.items() if key in setup.trello_keys}
    stamps: dict[str, list[float]] = defaultdict(list)
    unknown = []
    for r in fake.log:
        if r.via_batch:
            continue
        b = board_of(fake, r)
        if b is None or b not in token_of_board:
            unknown.append(f"{r.method} {r.path}")
            continue
        stamps[token_of_board[b]].append(r.at)
    if unknown:
        raise ValueError(f"requests the check cannot attribute to a token: {unknown[:5]}")
    return {tok: max_in_window(s, window) for tok, s in stamps.items()}


def writes_per_target(fake: FakeTrello) -> dict[tuple[str, str], int]:
    """How many times each write (path and values) and each create was sent successfully: a
    change sent twice shows up as a count of 2."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for r in fake.log:
        if r.method not in ("PUT", "POST") or r.status >= 300:
            continue
        if r.method == "POST" and r.path.rstrip("/") == "/cards":
            where = r.query.get("idList") or r.body.get("idList")  # one board's list
            args = {**r.query, **r.body}  # two deals may share a name: their cards differ by the CRM marker
            out[(f"create in {where}", f"{args.get('name')} | {args.get('desc')}")] += 1
        else:
            args = {**r.query, **r.body}
            out[(r.path, json.dumps(args, sort_keys=True, default=str))] += 1
    return dict(out)


def asana_peaks(fake: FakeAsana, window: float = 60.0) -> dict[str, int]:
    """Per Asana token, the most requests the fake saw in any ``window`` seconds of its clock."""
    stamps: dict[str, list[float]] = defaultdict(list)
    for r in fake.requests():
        stamps[r.token or ""].append(r.at)
    return {tok: max_in_window(s, window) for tok, s in stamps.items()}


def asana_writes(fake: FakeAsana) -> dict[str, int]:
    """How many times each write (a ``/batch`` action or a direct write, with its data) was sent
    and answered: a change sent twice shows up as a count of 2."""
    out: dict[str, int] = defaultdict(int)
    for r in fake.requests():
        if r.method == "GET" or r.status >= 300:
            continue
        data = r.body.get("data") if isinstance(r.body, dict) else None
        actions = data.get("actions") if isinstance(data, dict) and r.path.startswith("/batch") else None
        if isinstance(actions, list):
            for a in actions:
                if isinstance(a, dict) and str(a.get("method", "")).lower() != "get":
                    out[json.dumps(a, sort_keys=True, default=str)] += 1
        else:
            out[json.dumps([r.method, r.path, r.body], sort_keys=True, default=str)] += 1
    return dict(out)
