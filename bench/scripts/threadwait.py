#!/usr/bin/env python3
"""Where a process's threads spend a time window: on CPU, runnable but waiting for a CPU,
or asleep (off-CPU), per thread name, from /proc/PID/task/*/schedstat; plus sampled thread
states and kernel wait channels, and the machine's CPU use (/proc/stat) over the window.

Usage: threadwait.py PID SECONDS [HZ]    (run as the same user as PID or root)

schedstat fields: time on CPU (ns), time runnable waiting on a run queue (ns), timeslices.
Asleep = wall - on CPU - runnable.
"""
import collections
import os
import sys
import time


def threads(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run, wait, slices = (int(x) for x in f.read().split())
            out[tid] = (comm, run, wait, slices)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return out


def machine():
    with open("/proc/stat") as f:
        cpu = f.readline().split()[1:]
    vals = [int(x) for x in cpu]
    idle = vals[3] + vals[4]
    return sum(vals), idle, vals[4]


def sample_states(pid, counts, wchans):
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            state = stat[stat.rindex(")") + 2]
            try:
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    wchan = f.read().strip() or "-"
            except OSError:
                wchan = "?"
            key = group(comm)
            counts[key][state] += 1
            if state != "R":
                wchans[key][wchan] += 1
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass


def group(comm):
    # tokio workers are all "tokio-runtime-w"; fjall names its threads; group the rest.
    return comm


def main():
    pid, seconds = int(sys.argv[1]), float(sys.argv[2])
    hz = float(sys.argv[3]) if len(sys.argv) > 3 else 50.0
    before = threads(pid)
    m0 = machine()
    t0 = time.monotonic()
    counts = collections.defaultdict(collections.Counter)
    wchans = collections.defaultdict(collections.Counter)
    while time.monotonic() - t0 < seconds:
        sample_states(pid, counts, wchans)
        time.sleep(1.0 / hz)
    wall = time.monotonic() - t0
    after = threads(pid)
    m1 = machine()
    ticks = m1[0] - m0[0]
    print(f"window {wall:.1f} s; machine: busy {(1 - (m1[1] - m0[1]) / ticks) * 100:.0f} % "
          f"of {os.cpu_count()} CPUs, iowait {(m1[2] - m0[2]) / ticks * 100:.1f} %")
    agg = collections.defaultdict(lambda: [0, 0, 0, 0])
    for tid, (comm, run, wait, slices) in after.items():
        b = before.get(tid, (comm, 0, 0, 0))
        a = agg[comm]
        a[0] += run - b[1]
        a[1] += wait - b[2]
        a[2] += slices - b[3]
        a[3] += 1
    total_run = sum(a[0] for a in agg.values())
    total_wait = sum(a[1] for a in agg.values())
    print(f"process: on CPU {total_run / 1e9 / wall:.2f} cores, runnable waiting for a CPU "
          f"{total_wait / 1e9 / wall:.2f} thread-equivalents")
    print(f"{'thread':<18}{'n':>4}{'on CPU %':>10}{'runq %':>9}{'asleep %':>10}{'slices/s':>10}")
    for comm, (run, wait, slices, n) in sorted(agg.items(), key=lambda kv: -kv[1][0]):
        span = wall * 1e9 * n
        if run + wait < 0.002 * span:
            continue
        print(f"{comm:<18}{n:>4}{run / span * 100:>10.1f}{wait / span * 100:>9.1f}"
              f"{max(0.0, 1 - (run + wait) / span) * 100:>10.1f}{slices / wall:>10.0f}")
    print("\nsampled states (R running/runnable, S sleeping, D uninterruptible) and top wait channels:")
    for comm, c in sorted(counts.items(), key=lambda kv: -kv[1]["R"]):
        total = sum(c.values())
        top = ", ".join(f"{w} {n * 100 // max(1, sum(wchans[comm].values()))}%"
                        for w, n in wchans[comm].most_common(3))
        print(f"{comm:<18} R {c['R'] * 100 // total:>3}%  S {c['S'] * 100 // total:>3}%  "
              f"D {c['D'] * 100 // total:>3}%   {top}")


if __name__ == "__main__":
    main()
