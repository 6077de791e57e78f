"""Issue 17 item 11: after `kill -9` of `generate --workers 2`, its workers (and the resource tracker) exit too."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads child processes from /proc")


def children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (zombies left out)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def descendants(pid: int) -> set[int]:
    """Live children of `pid` and their children (the workers are forked by generate's fork server)."""
    kids = children(pid)
    return kids | {g for k in kids for g in children(k)}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_exit_when_generate_is_killed(tmp_path):
    cmd = [sys.executable, "-m", "deltaprompts.cli", "generate", "--family", "scene.shapes", "--n", "400",
           "--shard-size", "2", "--workers", "2", "--quiet", "--out", str(tmp_path / "run")]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    kids: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        # two workers, the resource tracker and (where the platform has one) the fork server
        while time.monotonic() < deadline and len(kids) < 4:
            time.sleep(0.2)
            kids = descendants(parent.pid)
            assert parent.poll() is None, "generate ended before its workers could be seen"
        assert len(kids) >= 4, f"expected two workers, a fork server and a resource tracker, saw {kids}"
        time.sleep(1.0)  # let the workers start their watchdogs (their initializer runs first)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(k) for k in kids):
            time.sleep(0.2)
        left = {k for k in kids if alive(k)}
        assert not left, f"processes of the killed run still alive: {left}"
    finally:
        for k in kids | descendants(parent.pid) | ({parent.pid} if parent.poll() is None else set()):
            try:  # only processes this test started
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
