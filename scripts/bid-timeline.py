#!/usr/bin/env python3
"""Where a lone bid's time goes: runs `gavel bench bids --connections 1 --gavel-only`,
records the nodes' and the client's network and fdatasync system calls with `perf record`
for a few seconds in the middle of the level, and prints, per step of a bid, the median
time over every bid seen:

  request in (leader's HTTP thread) -> handed on -> leader fdatasync -> entry sent to the
  followers -> first follower: received, fdatasync, ack sent -> ack received by the
  leader -> response out (leader's HTTP thread)

Usage: scripts/bid-timeline.py [--binary target/release/gavel] [--seconds 2]
                               [--cpu-idle-poll]
Needs root and perf (apt-get install linux-perf); loopback only; every wait is bounded.
The recording itself slows each system call a little: compare steps, not totals, with
`gavel bench bids`.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

EVENTS = ",".join(
    "syscalls:" + name
    for name in (
        "sys_enter_fdatasync",
        "sys_exit_fdatasync",
        "sys_enter_sendto",
        "sys_exit_recvfrom",
        "sys_enter_write",
    )
)
LINE = re.compile(r"\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+syscalls:(\S+):\s*(.*)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default="target/release/gavel")
    parser.add_argument("--seconds", type=float, default=2.0, help="recorded seconds (1-30)")
    parser.add_argument("--cpu-idle-poll", action="store_true", help="passed to bench bids")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 30:
        sys.exit("--seconds must be 1 to 30")
    if shutil.which("perf") is None:
        sys.exit("perf is not installed (apt-get install linux-perf)")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} is not an executable (cargo build --release)")
    work = tempfile.mkdtemp(prefix="gavel-bid-timeline-")
    level_seconds = int(args.seconds) + 20
    command = [args.binary, "bench", "bids", "--connections", "1", "--gavel-only",
               "--seconds", str(level_seconds), "--data-dir", work,
               "--results-dir", os.path.join(work, "results")]
    if args.cpu_idle_poll:
        command.append("--cpu-idle-poll")
    bench = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        nodes = wait_for_level(bench, args.binary)
        record = os.path.join(work, "perf.data")
        pids = ",".join(str(pid) for pid in nodes + [bench.pid])
        subprocess.run(["perf", "record", "-q", "-o", record, "-e", EVENTS, "-p", pids,
                        "--", "sleep", str(args.seconds)], check=True, timeout=args.seconds + 60)
        script = subprocess.run(["perf", "script", "-i", record, "-F", "comm,pid,tid,time,event,trace"],
                                check=True, capture_output=True, text=True, timeout=300).stdout
    finally:
        bench.terminate()
        try:
            bench.wait(timeout=60)
        except subprocess.TimeoutExpired:
            bench.kill()
        shutil.rmtree(work, ignore_errors=True)
    print_steps(parse(script))


def wait_for_level(bench, binary):
    """The node pids, once the level has run for a few seconds."""
    deadline = time.monotonic() + 120
    for line in bench.stdout:
        if line.startswith("floor before the levels"):
            break
        if time.monotonic() > deadline:
            sys.exit("the benchmark did not start its level within 120 s")
    else:
        sys.exit("the benchmark stopped before its level")
    time.sleep(5)
    nodes = [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and is_node(int(pid), bench.pid)]
    if len(nodes) != 3:
        sys.exit(f"expected 3 nodes under the benchmark, found {len(nodes)}")
    return nodes


def is_node(pid, parent):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return ppid == parent and b"serve" in cmdline.read()
    except (OSError, ValueError, IndexError):
        return False


def parse(script):
    events = []
    for line in script.splitlines():
        match = LINE.match(line)
        if match:
            comm, pid, tid, at, event, rest = match.groups()
            events.append((float(at) * 1e6, comm, int(pid), event, rest.strip()))
    http = lambda comm: comm.startswith("actix-rt")

    def size(rest):  # a return value; errors (-errno) come as large unsigned numbers
        try:
            value = int(rest, 16)
        except ValueError:
            return -1
        return value if value < 1 << 63 else -1

    leader = next((pid for at, comm, pid, event, rest in events
                   if http(comm) and event == "sys_enter_sendto"), None)
    steps = {}
    bid = None
    for at, comm, pid, event, rest in events:
        mine = pid == leader
        if mine and http(comm) and event == "sys_exit_recvfrom" and size(rest) > 0:
            bid = {"request": at, "follower": {}}
        elif bid is None:
            continue
        elif mine and http(comm) and event == "sys_enter_write" and "handed" not in bid:
            bid["handed"] = at
        elif mine and event == "sys_enter_fdatasync" and "sync" not in bid:
            bid["sync"] = at
        elif mine and event == "sys_exit_fdatasync" and "sync" in bid and "synced" not in bid:
            bid["synced"] = at
        elif mine and not http(comm) and event == "sys_enter_sendto" and "synced" in bid and "sent" not in bid:
            bid["sent"] = at
        elif not mine and "sent" in bid:
            f = bid["follower"].setdefault(pid, {})
            if event == "sys_exit_recvfrom" and size(rest) > 0 and "received" not in f:
                f["received"] = at
            elif event == "sys_enter_fdatasync" and "received" in f and "sync" not in f:
                f["sync"] = at
            elif event == "sys_exit_fdatasync" and "sync" in f and "synced" not in f:
                f["synced"] = at
            elif event == "sys_enter_sendto" and "synced" in f and "ack" not in f:
                f["ack"] = at
        elif mine and not http(comm) and event == "sys_exit_recvfrom" and size(rest) > 0 \
                and any("ack" in f for f in bid["follower"].values()) and "acked" not in bid:
            bid["acked"] = at
        elif mine and http(comm) and event == "sys_enter_sendto":
            record(steps, bid, at)
            bid = None
    return steps


def record(steps, bid, response):
    acks = [f for f in bid["follower"].values() if "ack" in f]
    needed = ("handed", "sync", "synced", "sent", "acked")
    if not acks or any(key not in bid for key in needed):
        return
    first = min(acks, key=lambda f: f["ack"])
    if not all(key in first for key in ("received", "sync", "synced")):
        return
    marks = [
        ("request in -> handed to Raft (HTTP thread)", bid["request"], bid["handed"]),
        ("handed -> leader fdatasync starts", bid["handed"], bid["sync"]),
        ("leader fdatasync", bid["sync"], bid["synced"]),
        ("leader synced -> entry sent", bid["synced"], bid["sent"]),
        ("sent -> follower has it", bid["sent"], first["received"]),
        ("follower has it -> its fdatasync starts", first["received"], first["sync"]),
        ("follower fdatasync", first["sync"], first["synced"]),
        ("follower synced -> ack sent", first["synced"], first["ack"]),
        ("ack sent -> leader has it", first["ack"], bid["acked"]),
        ("leader has the ack -> response out", bid["acked"], response),
        ("total: request in -> response out", bid["request"], response),
    ]
    for name, start, end in marks:
        steps.setdefault(name, []).append(end - start)


def print_steps(steps):
    if not steps:
        sys.exit("no complete bid was recorded")
    print(f"{'step of a lone bid':44s} {'bids':>6s} {'p50 µs':>8s} {'mean µs':>8s}")
    for name, values in steps.items():
        print(f"{name:44s} {len(values):6d} {statistics.median(values):8.0f} {statistics.mean(values):8.0f}")


if __name__ == "__main__":
    main()
