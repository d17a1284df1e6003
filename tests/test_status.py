"""`porchlight-op status`: reachability, key counts per kind and memory."""

from __future__ import annotations

import json

from flows import run_cli
from redis import Redis

from porchlight_op.store import keys


def test_status_counts_keys_per_kind(redis_server, monkeypatch, capsys):
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    plain = Redis.from_url(redis_server)
    plain.flushdb()
    plain.set(keys.secret("example"), b"x")
    plain.close()

    code, out, _ = run_cli(capsys, "status", "--json")

    report = json.loads(out)
    assert code == 0
    assert report["redis"] == "reachable"
    assert report["keys"]["secrets"] == 1
    assert report["keys"]["grants"] == 0
    assert report["used_memory_bytes"] > 0


def test_status_fails_cleanly_when_redis_is_down(monkeypatch, capsys):
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", "unix:///tmp/no-such-redis.sock")

    code, _, err = run_cli(capsys, "status")

    assert code == 1
    assert "Traceback" not in err
    assert "redis" in err.lower()
