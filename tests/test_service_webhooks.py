"""Webhook receivers (Trello, Asana), /healthz, and a webhook-triggered sync in real time."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

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
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def hooks():
    calls: list[str] = []
    remembered: list[str] = []
    server = HookServer(
        "127.0.0.1",
        0,
        on_change=calls.append,
        trello_secret=SECRET,
        trello_callback_url="https://sync.example.com/trello",
        remember_asana_secret=remembered.append,
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
    status, headers, _ = request(f"{base}/asana", body=b"", headers={"X-Hook-Secret": "hs-123"})
    assert status == 200 and headers.get("X-Hook-Secret") == "hs-123"
    assert remembered == ["hs-123"]
    assert request(f"{base}/asana", body=body, headers={"X-Hook-Signature": asana_signature("hs-123", body)})[0] == 200
    assert request(f"{base}/asana", body=body, headers={"X-Hook-Signature": asana_signature("nope", body)})[0] == 401
    assert calls == ["asana"]


def test_asana_fixed_secret_refuses_other_handshakes() -> None:
    server = HookServer("127.0.0.1", 0, on_change=lambda s: None, asana_secret="env-secret", asana_secret_fixed=True)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert request(f"{base}/asana", headers={"X-Hook-Secret": "attacker"})[0] == 401
        assert server.asana_secret == "env-secret"
    finally:
        server.stop()


def test_healthz(hooks) -> None:
    server, calls, _ = hooks
    url = f"http://127.0.0.1:{server.port}/healthz"
    status, _, body = request(url, "GET")
    assert status == 200 and json.loads(body) == {"calls": 0}
    calls.extend(["x", "y", "z"])
    assert request(url, "GET")[0] == 503
    assert request(f"http://127.0.0.1:{server.port}/nope", "GET")[0] == 404


def test_webhook_triggers_a_sync_within_seconds(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    generate(folder, cards=CARDS)
    add_deal(folder, "D91000")
    settings = load_settings(folder / "tasksync.toml")
    svc = SyncService(settings, today=TODAY)  # real clock; interval 60 s
    server = HookServer("127.0.0.1", 0, on_change=svc.trigger, trello_secret=SECRET).start()
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while svc.completed < 1:  # the first iteration is done: the loop sleeps for 60 s
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)
        card_id = add_card(folder, "D91000")
        sent = time.monotonic()
        body = b'{"action":{"type":"createCard"}}'
        url = f"http://127.0.0.1:{server.port}/trello"
        assert request(url, body=body, headers={"X-Trello-Webhook": trello_signature(SECRET, body, url)})[0] == 200
        while not card(folder, card_id)["idMembers"]:
            assert time.monotonic() - sent < 5, "not assigned within 5 s of the webhook"
            time.sleep(0.02)
    finally:
        svc.stop()
        thread.join(timeout=30)
        server.stop()
    assert not thread.is_alive()
