"""Compare porchlight_op with 1 and with 2 workers under wrk.

The Python load generator of run.py needs about as much CPU per request as the
OP, so on a two-core machine it cannot show what a second worker adds. wrk
(written in C) spends a small fraction of that, which leaves the cores to the
OP. Each round starts a fresh redis-server and OP, logs one user in, then runs
wrk against userinfo (with that user's access token) and against discovery.
Rounds alternate between 1 and 2 workers; the median of the rounds is printed.

Usage: .venv/bin/python benchmarks/scaling.py [--rounds 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
import run

WORKER_COUNTS = (1, 2)
CONNECTIONS = 32
_RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.M)
_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+([0-9]+)")


async def access_token(target: loadgen.Target) -> str:
    """Log the first user in and return an access token for userinfo."""
    connector = aiohttp.TCPConnector(limit=4)
    client = loadgen.Client(target, connector)
    try:
        await client.discover()
        tokens = await client.full_login(target.usernames[0], with_userinfo=True)
    finally:
        await client.close()
        await connector.close()
    return tokens.access_token


def wrk(url: str, duration: int, headers: dict[str, str]) -> tuple[float, int]:
    """Run wrk with one thread; return requests per second and error replies."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    rate = _RATE.search(output)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    errors = _ERRORS.search(output)
    return float(rate.group(1)), int(errors.group(1)) if errors else 0


def one_round(
    workers: int, duration: int, hashed: str, workdir: Path
) -> dict[str, Any]:
    """Start a fresh target with this many workers and measure both paths."""
    names = run.usernames(1)
    workdir.mkdir(parents=True)
    with run.started(f"ours-{workers}", workdir, names, hashed) as (
        processes,
        _,
        base,
    ):
        target = loadgen.Target(
            f"ours-{workers}",
            base,
            run.CLIENT_ID,
            run.CLIENT_SECRET,
            run.REDIRECT_URI,
            run.PASSWORD,
            names,
        )
        token = asyncio.run(access_token(target))
        result: dict[str, Any] = {}
        for name, url, headers in (
            ("userinfo", base + "/userinfo", {"Authorization": f"Bearer {token}"}),
            ("discovery", base + "/.well-known/openid-configuration", {}),
        ):
            before = run.cpu_seconds(processes.server.pid)
            rate, errors = wrk(url, duration, headers)
            cpu = run.cpu_seconds(processes.server.pid) - before
            result[name] = {
                "rate": rate,
                "errors": errors,
                "cpu_ms_per_op": 1000 * cpu / max(rate * duration, 1),
            }
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--output", type=Path, default=run.HERE / "results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    hashed = run.password_hash()
    rounds: dict[int, list[dict[str, Any]]] = {n: [] for n in WORKER_COUNTS}
    with tempfile.TemporaryDirectory(prefix="porchlight-scaling-") as scratch:
        for index in range(args.rounds):
            for workers in WORKER_COUNTS:
                workdir = Path(scratch) / f"round{index}-w{workers}"
                rounds[workers].append(
                    one_round(workers, args.duration, hashed, workdir)
                )
                print(f"round {index + 1}, {workers} worker(s): {rounds[workers][-1]}")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "scaling.json").write_text(json.dumps(rounds, indent=2))
    print()
    print("| path | 1 worker req/s | 2 workers req/s | 2/1 | errors |")
    print("|---|---:|---:|---:|---:|")
    for path in ("userinfo", "discovery"):
        medians = {
            n: statistics.median(r[path]["rate"] for r in rounds[n])
            for n in WORKER_COUNTS
        }
        errors = sum(r[path]["errors"] for n in WORKER_COUNTS for r in rounds[n])
        ratio = medians[2] / medians[1]
        print(
            f"| {path} | {medians[1]:,.0f} | {medians[2]:,.0f} | {ratio:.2f} |"
            f" {errors} |"
        )


if __name__ == "__main__":
    main()
