"""Webhook receivers (Trello, Asana), /healthz, and a webhook-triggered sync in real time."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasksync.examples import TODAY, generate
from tasksync.service.logs import LOGGER_NAME
from tasksync.service.loop import SyncService
from tasksync.service.webhooks import HookServer, asana_signature, trello_signature, verify_trello
from tasksync.settings import load_settings
from test_service import CARDS, add_card, add_deal, card

SECRET = "trello-app-secret"


def request(url: str, method: str = "POST", body: bytes = b"", headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture
def hooks():
    calls: list[str] = []
    remembered: list[tuple[str, str]] = []
    server = HookServer(
        "127.0.0.1",
        0,
        on_change=lambda source, ids: calls.append(source),
        trello_secret=SECRET,
        trello_callback_url="https://sync.example.com/trello",
        remember_asana_secret=lambda project, secret: remembered.append((project, secret)),
        health=lambda: (len(calls) < 3, {"calls": len(calls)}),
    ).start()
    try:
        yield server, calls, remembered
    finally:
        server.stop()


def test_trello_signature_matches_the_documented_recipe() -> None:
    # base64(HMAC-SHA1(secret, body + callbackURL)), computed independently
    import base64
    import hashlib
    import hmac

    body = b'{"action":{"type":"updateCard"}}'
    url = "https://sync.example.com/trello"
    expected = base64.b64encode(hmac.new(SECRET.encode(), body + url.encode(), hashlib.sha1).digest()).decode()
    assert trello_signature(SECRET, body, url) == expected
    assert verify_trello(SECRET, body, url, expected)
    assert not verify_trello(SECRET, body + b" ", url, expected)
    assert not verify_trello(SECRET, body, url + "x", expected)
    assert not verify_trello(None, body, url, expected)


def test_trello_receiver(hooks, caplog: pytest.LogCaptureFixture) -> None:
    server, calls, _ = hooks
    base = f"http://127.0.0.1:{server.port}"
    assert request(f"{base}/trello", "HEAD")[0] == 200  # Trello's check when the webhook is created
    body = b'{"action":{"id":"1"}}'
    good = trello_signature(SECRET, body, "https://sync.example.com/trello")
    assert request(f"{base}/trello", body=body, headers={"X-Trello-Webhook": good})[0] == 200
    assert calls == ["trello"]
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    assert request(f"{base}/trello", body=body, headers={"X-Trello-Webhook": "AAAA"})[0] == 401
    assert request(f"{base}/trello", body=body + b"x", headers={"X-Trello-Webhook": good})[0] == 401
    assert request(f"{base}/trello", body=body)[0] == 401
    assert calls == ["trello"] and server.rejected == 3
    rejected = [r for r in caplog.records if r.getMessage() == "webhook.rejected"]
    assert len(rejected) == 3 and all(good not in str(r.__dict__) for r in rejected)


def test_asana_handshake_then_signed_events(hooks) -> None:
    server, calls, remembered = hooks
    base = f"http://127.0.0.1:{server.port}"
    body = b'{"events":[]}'
    assert request(f"{base}/asana", body=body, headers={"X-Hook-Signature": asana_signature("x", body)})[0] == 401
    with server.expect_asana_handshake():  # tasksync is registering the webhook
        status, headers, _ = request(f"{base}/asana", body=b"", headers={"X-Hook-Secret": "hs-123"})
    assert status == 200 and headers.get("X-Hook-Secret") == "hs-123"
    assert remembered == [("", "hs-123")]
    assert request(f"{base}/asana", body=body, headers={"X-Hook-Signature": asana_signature("hs-123", body)})[0] == 200
    assert request(f"{base}/asana", body=body, headers={"X-Hook-Signature": asana_signature("nope", body)})[0] == 401
    assert calls == ["asana"]


def test_asana_fixed_secret_refuses_other_handshakes() -> None:
    server = HookServer(
        "127.0.0.1", 0, on_change=lambda s, ids: None, asana_secret="env-secret", asana_secret_fixed=True
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert request(f"{base}/asana", headers={"X-Hook-Secret": "attacker"})[0] == 401
        assert server.asana_secret == "env-secret"
    finally:
        server.stop()


def test_asana_handshake_outside_a_registration_is_refused(hooks) -> None:
    """Issue 17 item 6: anyone reaching the port could POST a new X-Hook-Secret and take the webhook over."""
    server, calls, remembered = hooks
    base = f"http://127.0.0.1:{server.port}"
    with server.expect_asana_handshake():
        assert request(f"{base}/asana", headers={"X-Hook-Secret": "asana-secret"})[0] == 200
    status, headers, _ = request(f"{base}/asana", headers={"X-Hook-Secret": "attacker"})
    assert status == 401 and "X-Hook-Secret" not in headers
    assert remembered == [("", "asana-secret")] and server.asana_secret == "asana-secret"
    body = b'{"events":[{"action":"changed"}]}'
    forged = asana_signature("attacker", body)
    assert request(f"{base}/asana", body=body, headers={"X-Hook-Signature": forged})[0] == 401
    good = asana_signature("asana-secret", body)
    assert request(f"{base}/asana", body=body, headers={"X-Hook-Signature": good})[0] == 200
    assert calls == ["asana"]


def test_healthz(hooks) -> None:
    server, calls, _ = hooks
    url = f"http://127.0.0.1:{server.port}/healthz"
    status, _, body = request(url, "GET")
    assert status == 200 and json.loads(body) == {"calls": 0}
    calls.extend(["x", "y", "z"])
    assert request(url, "GET")[0] == 503
    assert request(f"http://127.0.0.1:{server.port}/nope", "GET")[0] == 404


def test_webhook_triggers_a_sync_long_before_the_interval(tmp_path: Path) -> None:
    """A webhook wakes the sleeping loop: with an hour between checks, the new card is assigned by
    the iteration the webhook started (no wall-clock bound on how soon: the hour is the proof)."""
    folder = tmp_path / "demo"
    generate(folder, cards=CARDS)
    add_deal(folder, "D91000")
    base = load_settings(folder / "tasksync.toml")
    settings = base.model_copy(update={"service": base.service.model_copy(update={"interval": 3600.0})})
    svc = SyncService(settings, today=TODAY)  # real clock
    server = HookServer("127.0.0.1", 0, on_change=svc.trigger, trello_secret=SECRET).start()
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: svc.completed >= 1, "the first iteration")  # then the loop sleeps for an hour
        card_id = add_card(folder, "D91000")
        body = b'{"action":{"type":"createCard"}}'
        url = f"http://127.0.0.1:{server.port}/trello"
        assert request(url, body=body, headers={"X-Trello-Webhook": trello_signature(SECRET, body, url)})[0] == 200
        wait_until(lambda: bool(card(folder, card_id)["idMembers"]), "the new card assigned after the webhook")
        wait_until(lambda: svc.completed >= 2, "the webhook's iteration finished")
        assert svc.completed == 2  # the webhook's iteration, not the hourly one
    finally:
        svc.stop()
        thread.join(timeout=30)
        server.stop()
    assert not thread.is_alive()


def wait_until(cond: Callable[[], bool], what: str, limit: float = 300.0) -> None:
    """Poll ``cond``; fail naming ``what`` after ``limit`` seconds (a hang guard, not a speed check)."""
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within {limit:.0f} s"
        time.sleep(0.05)


def test_registering_an_asana_webhook_accepts_its_handshake_and_keeps_the_secret_0600(tmp_path: Path) -> None:
    import responses

    from tasksync.service.webhooks import read_secret_file, register_asana_webhook, write_secret_file

    secret_file = tmp_path / "state" / "asana-webhook-secret"
    server = HookServer(
        "127.0.0.1",
        0,
        on_change=lambda s, ids: None,
        remember_asana_secret=lambda project, secret: write_secret_file(secret_file, secret),
    ).start()
    base = f"http://127.0.0.1:{server.port}"
    answers: list[int] = []
    try:
        with responses.RequestsMock() as rsps:

            def asana_registers(req: object) -> tuple[int, dict[str, str], str]:
                # Asana sends the handshake to the target before it answers the registration
                answers.append(request(f"{base}/asana", headers={"X-Hook-Secret": "from-asana"})[0])
                return 201, {}, json.dumps({"data": {"gid": "1209", "target": f"{base}/asana"}})

            rsps.add_callback("POST", "https://app.asana.com/api/1.0/webhooks", callback=asana_registers)
            gid = register_asana_webhook("https://app.asana.com/api/1.0", "pat", "1200", f"{base}/asana", server)
        assert gid == "1209" and answers == [200]
        assert read_secret_file(secret_file) == "from-asana"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        # the registration is over: a second handshake cannot replace the secret
        assert request(f"{base}/asana", headers={"X-Hook-Secret": "attacker"})[0] == 401
        assert read_secret_file(secret_file) == "from-asana"
    finally:
        server.stop()


def test_each_asana_project_has_its_own_webhook_secret_and_its_deliveries_reach_it(tmp_path: Path) -> None:
    """Two Asana projects served by one process: each webhook delivers to /asana/<project gid>
    with the secret of its own handshake (kept per project); a delivery is verified with its
    project's secret only, and wakes that project (its gid is among the ids it names)."""
    import responses

    from tasksync.service.webhooks import read_secret_file, register_asana_webhook, write_secret_file

    woken: list[list[str]] = []
    server = HookServer(
        "127.0.0.1",
        0,
        on_change=lambda s, ids: woken.append(ids),
        remember_asana_secret=lambda project, secret: write_secret_file(tmp_path / f"secret-{project}", secret),
    ).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with responses.RequestsMock() as rsps:

            def asana_registers(req: Any) -> tuple[int, dict[str, str], str]:
                target = json.loads(req.body)["data"]["target"]
                project = target.rsplit("/", 1)[1]
                assert request(target, headers={"X-Hook-Secret": f"secret-of-{project}"})[0] == 200
                return 201, {}, json.dumps({"data": {"gid": f"hook-{project}", "target": target}})

            rsps.add_callback("POST", "https://app.asana.com/api/1.0/webhooks", callback=asana_registers)
            for project in ("1200", "1300"):
                target = f"{base}/asana/{project}"
                register_asana_webhook("https://app.asana.com/api/1.0", "pat", project, target, server)
        assert read_secret_file(tmp_path / "secret-1200") == "secret-of-1200"
        assert read_secret_file(tmp_path / "secret-1300") == "secret-of-1300"
        body = b'{"events":[{"action":"changed","resource":{"gid":"77","resource_type":"task"}}]}'
        for project in ("1200", "1300"):
            signed = {"X-Hook-Signature": asana_signature(f"secret-of-{project}", body)}
            assert request(f"{base}/asana/{project}", body=body, headers=signed)[0] == 200
        assert woken == [["1200"], ["1300"]]  # each delivery names its project: the scheduler wakes that board
        wrong = {"X-Hook-Signature": asana_signature("secret-of-1300", body)}
        assert request(f"{base}/asana/1200", body=body, headers=wrong)[0] == 401  # another project's secret
        assert request(f"{base}/asana", body=body, headers=wrong)[0] == 401  # no webhook on the bare path
        assert request(f"{base}/asana/..", body=body, headers=wrong)[0] in (401, 404)
    finally:
        server.stop()


def test_a_world_readable_secret_file_is_made_0600(tmp_path: Path) -> None:
    from tasksync.service.webhooks import read_secret_file

    path = tmp_path / "secret"
    path.write_text("s3cret\n", encoding="utf-8")
    path.chmod(0o644)
    assert read_secret_file(path) == "s3cret"
    assert path.stat().st_mode & 0o777 == 0o600


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    """Clients that connect and send half a request head, then nothing."""
    out = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /asana HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        out.append(s)
    return out


def _fd_budget(wanted: int) -> int:
    """How many slow clients this process can open (each costs a descriptor here and one in the server)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return wanted if soft == resource.RLIM_INFINITY else min(wanted, (soft - 200) // 2)


def test_slow_clients_cannot_starve_healthz_and_are_cut_off() -> None:
    """Issue 17 item 12: slow clients were never timed out (backlog 5) and 3,000 of them starved /healthz."""
    server = HookServer(
        "127.0.0.1", 0, on_change=lambda s, ids: None, health=lambda: (True, {"ok": 1}), request_timeout=1.0
    ).start()
    slow: list[socket.socket] = []
    try:
        slow = _slow_clients(server.port, _fd_budget(3000))
        assert len(slow) >= 500
        status, _, body = request(f"http://127.0.0.1:{server.port}/healthz", "GET")
        assert status == 200 and json.loads(body) == {"ok": 1}
        # each slow client is disconnected by the server (the head never completed), without an answer
        for s in slow:
            assert s.recv(1024) == b""
    finally:
        for s in slow:
            s.close()
        server.stop()


def test_a_slow_body_gets_408_and_busy_handlers_leave_healthz_alone() -> None:
    server = HookServer(
        "127.0.0.1",
        0,
        on_change=lambda s, ids: None,
        health=lambda: (True, {}),
        request_timeout=1.0,
        max_active=2,
    ).start()
    held: list[socket.socket] = []
    try:
        for _ in range(3):  # whole heads, bodies that never come: each holds a handler until its timeout
            s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            s.sendall(b"POST /asana HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            held.append(s)
        assert request(f"http://127.0.0.1:{server.port}/healthz", "GET")[0] == 200
        answers = sorted(s.recv(1024).split(b" ", 2)[1] for s in held)
        assert answers[:2] == [b"408", b"408"]  # the third one: 408, or 503 when no handler freed in time
        assert answers[2] in (b"408", b"503")
    finally:
        for s in held:
            s.close()
        server.stop()


def test_register_asana_webhook_needs_an_asana_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tasksync.cli import main

    generate(tmp_path / "demo", cards=CARDS)
    argv = ["-c", str(tmp_path / "demo" / "tasksync.toml"), "serve", "--webhook-port", "0"]
    capsys.readouterr()
    assert main([*argv, "--register-asana-webhook", "https://sync.example.com/asana"]) == 2
    err = capsys.readouterr().err
    assert "--register-asana-webhook needs an Asana project" in err and "Traceback" not in err
