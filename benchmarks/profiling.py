"""Sample the OP with py-spy during a scenario and summarise the hot frames.

py-spy writes collapsed stacks ("frame;frame;frame count" per line). The
summary lists the frames that were on the stack (inclusive) and on top of the
stack (self) in the largest share of the active samples of all threads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

SAMPLE_RATE = 250  # samples per second
TOP = 15
# Frames whose inclusive share gives the breakdown of a login.
BREAKDOWN = {
    "argon2 verify": re.compile(r"argon2|PasswordHasher"),
    "JWS signing": re.compile(r"\bsign(_compact)?\b.*cryptojwt"),
    "JWS verification": re.compile(r"\bverify(_compact)?\b.*cryptojwt"),
    "grant load/dump (state.py)": re.compile(r"porchlight_op/oidc/state\.py"),
}

# Frames on nearly every stack (event loop, process start) carry no information.
INFRASTRUCTURE = (
    "asyncio/",
    "selectors.py",
    "(porchlight-op)",
    "porchlight_op/cli.py",
    "porchlight_op/server.py",
    "threading.py",
    "concurrent/futures/thread.py",
)


def py_spy() -> str | None:
    """Return the py-spy executable beside this interpreter or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, duration: float, output: Path) -> subprocess.Popen[bytes]:
    """Start sampling pid and its child processes for `duration` seconds."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("py-spy not found: pip install py-spy")
    command = [
        executable,
        "record",
        *("--pid", str(pid), "--subprocesses", "--nonblocking"),
        *("--rate", str(SAMPLE_RATE), "--duration", str(max(1, int(duration)))),
        *("--format", "raw", "--output", str(output)),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frame_name(frame: str) -> str:
    # A frame is "function (path/to/file.py:line)"; drop the line number.
    return re.sub(r":\d+\)$", ")", frame.strip())


def _shorten(frame: str) -> str:
    return re.sub(r"\(.*site-packages/", "(", frame)


def summarize(collapsed: Path) -> str:
    """Top inclusive and self frames, and the login breakdown, as Markdown."""
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            self_time[frames[-1]] += count
        joined = ";".join(frames)
        for group, pattern in BREAKDOWN.items():
            if pattern.search(joined):
                groups[group] += count
    if total == 0:
        return "(no samples)\n"

    def share(count: int) -> str:
        return f"{100 * count / total:5.1f} %"

    lines = [f"{total} active samples", "", "| share | group |", "|---:|---|"]
    lines += [f"| {share(groups[g])} | {g} |" for g in BREAKDOWN]
    lines += ["", "| inclusive | frame |", "|---:|---|"]
    lines += [
        f"| {share(c)} | `{_shorten(f)}` |"
        for f, c in inclusive.most_common(TOP * 3)
        if not any(part in f for part in INFRASTRUCTURE)
    ][:TOP]
    lines += ["", "| self | frame |", "|---:|---|"]
    lines += [
        f"| {share(c)} | `{_shorten(f)}` |" for f, c in self_time.most_common(TOP)
    ]
    return "\n".join(lines) + "\n"
