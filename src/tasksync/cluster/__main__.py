"""``tasksync-cluster`` (or ``python -m tasksync.cluster``): worker, scheduler, webhooks, enqueue, status,
reps, migrate.

Exit codes: 0 done (or stopped by SIGTERM/SIGINT); 1 a board's last job failed (status);
2 bad configuration or a server that cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date
from types import FrameType

from tasksync.errors import TasksyncError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tasksync-cluster", description=__doc__)
    p.add_argument("-c", "--cluster", default="cluster.toml", help="the cluster file (default cluster.toml)")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run board syncs from the queue until SIGTERM")
    w.add_argument("--threads", type=int, default=2, help="jobs run at once in this process (default 2)")
    w.add_argument("--today", help=argparse.SUPPRESS)
    w.add_argument("--heartbeat-timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    w.add_argument("--local-budget", action="store_true", help=argparse.SUPPRESS)  # the benchmark's baseline
    sub.add_parser("scheduler", help="queue every board's periodic sync, once per interval for the whole cluster")
    h = sub.add_parser("webhooks", help="serve the webhook endpoint: a verified delivery queues its board's sync")
    h.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    h.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    h.add_argument("--request-timeout", type=float, default=10.0, help="seconds for a request (default 10)")
    e = sub.add_parser("enqueue", help="queue a sync of the named boards now (all with --all)")
    e.add_argument("boards", nargs="*", help="board keys: config paths as written in the cluster file")
    e.add_argument("--all", action="store_true")
    s = sub.add_parser("status", help="per board: jobs run, the last job's outcome")
    s.add_argument("--json", action="store_true")
    sub.add_parser("migrate", help="create or upgrade the PostgreSQL state store's schema")
    from tasksync.cluster.reps import add_reps_parser

    add_reps_parser(sub)
    return p


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from tasksync.cluster.config import load_cluster

    try:
        from tasksync.cluster.jobs import Cluster
    except ImportError as e:
        print(f"tasksync-cluster: {e.name} is missing: pip install 'tasksync[cluster]'", file=sys.stderr)
        return 2

    try:
        cfg = load_cluster(args.cluster)
        if args.command == "migrate":
            from tasksync.cluster.pgstore import connect, migrate

            with connect(cfg.database_url) as conn:
                applied = migrate(conn)
            print("applied: " + ", ".join(applied) if applied else "up to date")
            return 0
        today = date.fromisoformat(args.today) if getattr(args, "today", None) else None
        cluster = Cluster(cfg, today=today, heartbeat_timeout=getattr(args, "heartbeat_timeout", 60.0))
        stop = threading.Event()
        if args.command == "worker":
            _stop_on_signals(stop)
            worker = cluster.worker(threads=args.threads, shared_budget=not args.local_budget)
            logging.getLogger("tasksync.cluster").info("worker ready: queue %s, %d threads", cfg.queue, args.threads)
            try:
                stop.wait()
            finally:
                worker.stop()
            return 0
        if args.command == "scheduler":
            from tasksync.cluster.scheduler import Scheduler

            sched = Scheduler(cluster)
            _stop_on_signals(stop)

            def stop_when_asked() -> None:
                stop.wait()
                sched.stop()

            threading.Thread(target=stop_when_asked, daemon=True).start()
            sched.run()
            return 0
        if args.command == "webhooks":
            from tasksync.cluster.webhook import ClusterWebhooks, create_webhook_app
            from tasksync.web.server import WebServer

            app = create_webhook_app(ClusterWebhooks(cluster), request_timeout=args.request_timeout)
            server = WebServer(app, args.host, args.port, request_timeout=args.request_timeout)
            logging.getLogger("tasksync.cluster").info("webhooks: listening on %s:%d", args.host, server.port)
            server.run()  # until SIGTERM/SIGINT
            return 0
        if args.command == "reps":
            from tasksync.cluster.reps import run_reps

            code, text = run_reps(cluster, args, today or date.today())
            print(text if code == 0 else f"tasksync-cluster: {text}", file=sys.stdout if code == 0 else sys.stderr)
            return code
        if args.command == "enqueue":
            keys = [b.key for b in cfg.boards] if args.all else args.boards
            if not keys:
                print("tasksync-cluster: name boards to enqueue, or --all", file=sys.stderr)
                return 2
            queued = sum(cluster.enqueue(k, "manual") for k in keys)
            print(f"queued {queued} of {len(keys)} (the others were already queued)")
            return 0
        report = cluster.status()
        if args.json:
            print(json.dumps(report, indent=1))
        else:
            for key, r in report.items():
                detail = f" ({r['error']})" if r.get("error") else ""
                print(f"{key}: {r['runs']} jobs, last {r.get('outcome', 'never')} at {r.get('at', '-')}{detail}")
        return 1 if any(r.get("outcome") == "error" for r in report.values()) else 0
    except TasksyncError as e:
        print(f"tasksync-cluster: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
