#!/usr/bin/env python3
"""Writes BENCHMARKS.md and BENCHMARKS.svg from the raw results of a scripts/bench.sh run.

Usage (scripts/bench.sh runs it from the repository root):

    scripts/bench_report.py RESULTS CONFIGS CRITERION_DIR ALLOC_LOG [--out-dir DIR] [--load-rs FILE]

RESULTS        target/bench/results.jsonl: one line per run,
               {"bench_server": ..., "config": ..., "rep": N, "result": <load's JSON line or null>}
CONFIGS        target/bench/configs.txt: id|description|relay|max clients|reps|servers|load arguments
CRITERION_DIR  target/criterion (<bench>/new/benchmark.json and estimates.json)
ALLOC_LOG      target/bench/relay_alloc.log (the output of tests/relay_alloc.rs)
--out-dir      where BENCHMARKS.md and BENCHMARKS.svg are written (default: the current directory)
--load-rs      the file whose `//!` usage block is quoted (default: examples/load.rs)

The report: the targets of issue 14 (each holds or MISSED, by how much), throughput, round
trips, join storms (storm<N>), connected idle clients (idle<N>), the recovery of a lost reliable
packet (recovery), the unpaced overload with its spread, perf, criterion, every run, commands; the
chart has the throughput bars and, when storms ran, a panel of how far each storm got.

perf reports (perf-ours.txt, perf-minimal.txt, perf-connect-ours.txt) are read from the directory
of RESULTS. The sections of an existing BENCHMARKS.md between <!-- rpc-paths:begin --> and
<!-- rpc-paths:end --> (written by scripts/bench_rpc_paths.sh) and between <!-- bench_ws:begin -->
and <!-- bench_ws:end --> (scripts/bench_ws.sh) are carried over unchanged, in that order.

Environment (set by scripts/bench.sh): BENCH_SERVERS, BENCH_REPS_USED, BENCH_QUICK_USED,
BENCH_SKIPPED, BENCH_RUN_DATE, BENCH_GIT, BENCH_ELAPSED, BENCH_CPU_MODEL, BENCH_NPROC,
BENCH_KERNEL, BENCH_RUSTC, BENCH_GODOT_VERSION, BENCH_CMD_OURS, BENCH_CMD_MINIMAL,
BENCH_CMD_GODOT, BENCH_PIN_LOAD, BENCH_PROFILE_ARGS, BENCH_CONNECT_PROFILE_ARGS; optional:
BENCH_CMD_OURS_BUSY, BENCH_ONLY_USED.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys
from dataclasses import dataclass

NAMES = {"ours": "ours (relay-server)", "ours_busy": "ours, always busy-polling",
         "minimal": "minimal relay", "godot": "Godot 3.2"}
COLORS = {"ours": "#d9480f", "ours_busy": "#f08c00", "minimal": "#1c7ed6", "godot": "#478061"}
# The join storms, by size, and the idle configurations.
STORM_SIZES = [100, 500, 1000, 2000, 4095]
IDLE_SIZES = [100, 1000, 4095]
# Throughput configurations whose target is a broadcast (every other client, or all but one).
BROADCAST_PREFIXES = ("bcast", "excl")
# The sections other scripts write into BENCHMARKS.md: (begin marker, end marker), in report order.
KEPT_MARKERS = [("<!-- rpc-paths:begin -->", "<!-- rpc-paths:end -->"),
                ("<!-- bench_ws:begin -->", "<!-- bench_ws:end -->")]


# ---- reading the inputs --------------------------------------------------------------------

def read_configs(path):
    """The configurations of configs.txt: (id, description, load arguments, relay|norelay,
    max clients, servers ("all" or the kinds that run it)), in order."""
    configs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                cid, desc, variant, max_clients, _reps, servers, args = line.split("|", 6)
                configs.append((cid, desc, args, variant, max_clients, servers))
    return configs


def read_runs(path):
    """(config, server) -> the result dicts of its runs in the order they ran (None for a run
    whose load generator printed nothing)."""
    runs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            runs.setdefault((r["config"], r["bench_server"]), []).append(r["result"])
    return runs


def read_alloc_lines(path):
    """The lines of tests/relay_alloc.rs's output worth quoting."""
    lines = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if "Rust allocations" in line or line.startswith("test result") or "panicked" in line:
                    lines.append(line.rstrip())
    return lines


# A line of `perf report --sort dso,symbol --stdio`: share, object, [k] or [.], symbol.
PERF_LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)(\s+-\s+-)?\s*$")


def read_profile(path):
    """A perf report of a relay's process summed up: ({category: share}, [(share, Rust symbol)]),
    or None when there is no report."""
    if not os.path.exists(path):
        return None
    cats = {"Rust (src/, enet-wrapper, std)": 0.0, "ENet (C)": 0.0, "allocator and libc (malloc, mimalloc, free, syscall stubs)": 0.0,
            "kernel (UDP, syscalls)": 0.0, "other": 0.0}
    rust = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = PERF_LINE.match(line)
            if not m:
                continue
            pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
            if kind == "k" or "kernel" in dso:
                cats["kernel (UDP, syscalls)"] += pct
            elif dso.startswith("libc"):
                cats["allocator and libc (malloc, mimalloc, free, syscall stubs)"] += pct
            elif dso in ("relay-server", "relay_server", "minimal_relay"):
                if sym.startswith(("mi_", "_mi_")):
                    cats["allocator and libc (malloc, mimalloc, free, syscall stubs)"] += pct
                elif "::" in sym or sym.startswith("<") or sym.startswith("_ZN"):
                    cats["Rust (src/, enet-wrapper, std)"] += pct
                    rust.append((pct, sym))
                else:
                    cats["ENet (C)"] += pct
            else:
                cats["other"] += pct
    return cats, rust


def read_hot_symbols(path):
    """Every symbol line of a perf report as (share, object, symbol), hottest first; None when
    there is no report."""
    if not os.path.exists(path):
        return None
    top = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = PERF_LINE.match(line)
            if m:
                top.append((float(m.group(1)), m.group(2), m.group(4).strip()))
    top.sort(reverse=True)
    return top


def read_criterion(criterion_dir):
    """(benchmark id, median nanoseconds) of every benchmark criterion measured last."""
    rows = []
    for path in glob.glob(os.path.join(criterion_dir, "**", "new", "benchmark.json"), recursive=True):
        try:
            with open(path, encoding="utf-8") as f:
                b = json.load(f)
            with open(os.path.join(os.path.dirname(path), "estimates.json"), encoding="utf-8") as f:
                e = json.load(f)
        except (OSError, ValueError):
            continue
        rows.append((b.get("full_id", path), e["median"]["point_estimate"]))
    return rows


def read_usage(load_rs):
    """The first ``` block of the file's leading `//!` doc comment (the load generator's usage)."""
    usage, inside = [], False
    with open(load_rs, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("//!"):
                break
            text = line[4:].rstrip("\n") if line.startswith("//! ") else line[3:].rstrip("\n")
            if text.startswith("```"):
                if inside:
                    break
                inside = True
                continue
            if inside:
                usage.append(text)
    return usage


def kept_section(path, markers=KEPT_MARKERS):
    """The sections other scripts write between their markers (KEPT_MARKERS), markers included,
    each with a newline after and a blank line between them, to be carried over unchanged; a
    section whose begin or end marker is missing is left out; "" when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return ""
    sections = []
    for begin, end in markers:
        i = text.find(begin)
        j = text.find(end, i + len(begin)) if i >= 0 else -1
        if j >= 0:
            sections.append(text[i:j + len(end)] + "\n")
    return "\n".join(sections)


# ---- the numbers ---------------------------------------------------------------------------

class Runs:
    """The results of every run, by (config, server), and the statistics the report shows."""

    def __init__(self, runs):
        self.runs = runs

    def get(self, cfg, server):
        return self.runs.get((cfg, server), [])

    def values(self, cfg, server, key):
        """key of every successful run that reported it."""
        out = []
        for r in self.get(cfg, server):
            if r and r.get("ok") and r.get(key) is not None:
                out.append(float(r[key]))
        return out

    def med(self, cfg, server, key):
        v = self.values(cfg, server, key)
        return statistics.median(v) if v else None

    def spread(self, cfg, server, key):
        """(min, first quartile, median, third quartile, max, n) of key over the successful
        runs, or None."""
        v = sorted(self.values(cfg, server, key))
        if not v:
            return None
        if len(v) >= 2:
            q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive")
        else:
            q1 = q3 = v[0]
        return v[0], q1, statistics.median(v), q3, v[-1], len(v)

    def med_mesh(self, cfg, server):
        """Median mesh time over every run that connected, a mesh that never completed counting
        as infinitely slow (so failures are not silently dropped)."""
        v = []
        for r in self.get(cfg, server):
            if r and r.get("ok"):
                v.append(float("inf") if r.get("mesh_s") is None else float(r["mesh_s"]))
        return statistics.median(v) if v else None

    def rep_values(self, cfg, server, key):
        """(index of the run, value) of every successful run that reported key."""
        return [(i, float(r[key])) for i, r in enumerate(self.get(cfg, server))
                if r and r.get("ok") and r.get(key) is not None]

    def paired(self, cfg, a, b, key="msgs_per_s"):
        """Median over rounds of value(a) / value(b), both measured in the same round: steadier
        on a shared machine than the ratio of two medians. A round is the position of the run in
        the server's list of runs of cfg."""
        ra = {r: x for r, x in self.rep_values(cfg, a, key)}
        rb = {r: x for r, x in self.rep_values(cfg, b, key)}
        qs = [ra[r] / rb[r] for r in ra if r in rb and rb[r]]
        return statistics.median(qs) if qs else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# ---- formatting ----------------------------------------------------------------------------

def fmt(v, digits=0, unit=""):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def fmt_mesh(v):
    if v is None:
        return "n/a"
    return "not within 30 s" if v == float("inf") else f"{v:.2f}"


def fratio(r):
    return "n/a" if r is None else f"{r:.2f}x"


def ns(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.2f} µs"
    return f"{v:.1f} ns"


def crit_key(row):
    """Sorts benchmark ids by their parts, numbers as numbers (route/8 before route/32)."""
    parts = row[0].split("/")
    return [int(p) if p.isdigit() else p for p in parts]


# ---- the report ----------------------------------------------------------------------------

@dataclass
class Report:
    """Everything the report shows."""
    env: object  # os.environ or a dict with the BENCH_* variables
    configs: list
    runs: Runs
    servers: list
    criterion: list  # read_criterion
    alloc_lines: list  # read_alloc_lines
    profiles: dict  # server -> read_profile (ours, minimal)
    connect_top: object  # read_hot_symbols of the connect profile, or None
    usage: list  # read_usage

    @property
    def desc_of(self):
        return {c[0]: c[1] for c in self.configs}

    @property
    def throughput(self):
        return [c[0] for c in self.configs if "--test throughput" in c[2]]

    @property
    def overload(self):
        return [c[0] for c in self.configs if "--test overload" in c[2]]


def intro_section(rep):
    env = rep.env
    md = []
    w = md.append
    w("# Benchmarks")
    w("")
    w("Generated by `scripts/bench.sh` from a run on " + env["BENCH_RUN_DATE"]
      + f" (commit {env['BENCH_GIT']}); do not edit by hand.")
    w("")
    w("Three servers, measured in the same run so that their ratios hold on a noisy shared machine:")
    w("")
    w("- **ours**: the `relay-server` binary with its default settings (it busy-polls for "
      "`--busy-poll-us=1000` µs after traffic, then blocks in the socket up to 100 ms or until "
      "ENet's next timer), `--compression none`; in the recovery test also *always busy-polling* "
      "(`--busy-poll-us 3600000000`). Its allocator is mimalloc, ENet's blocks included "
      "(`enet_wrapper::allocate_through_rust`), in normal pages (`enet_wrapper::avoid_huge_pages`); "
      "the minimal relay and Godot use glibc's malloc (single-threaded for the minimal relay).")
    w("- **minimal**: `examples/minimal_relay.rs`, the ceiling: a relay written directly on "
      "`enet-wrapper` that receives, checks the header's source, reads the target and hands the same "
      "packet to `send_many` for each destination, busy-polling `service(0)`.")
    w("- **Godot 3.2**: the real engine (`godot3-server`) running `benches/godot/bench_server.gd`: a "
      "`NetworkedMultiplayerENet` server with relay on, `poll()` once per frame and every packet taken "
      "with `get_packet()`, `low_processor_usage_mode_sleep_usec = 0`.")
    w("")
    w("No compression anywhere (Godot 3.2's default). The server runs pinned to CPU 0 and the load "
      "generator (`examples/load.rs`, one thread, all its clients in one process) to CPU 1. "
      f"Each throughput configuration ran {env['BENCH_REPS_USED']} times per server, the join "
      "storms 1 to 3 times (3 for 1000 clients, 2 for 4095), the unpaced overload 9 times, in rounds: "
      "in each round the servers run back to back, taking turns going first. Tables show medians; "
      "ratios are medians of the per-round ratios, which hold better than ratios of medians when "
      "the shared machine slows down for a while.")
    if env.get("BENCH_ONLY_USED"):
        w("")
        w(f"Parts measured in the last run (`BENCH_ONLY={env['BENCH_ONLY_USED']}`); the other parts' "
          "results are from the run before.")
    if env.get("BENCH_QUICK_USED") == "1":
        w("")
        w("**Quick mode (BENCH_QUICK=1): a tenth of the packets and one repetition. Not a real "
          "measurement.**")
    busy = [r for rs in rep.runs.runs.values() for r in rs
            if r and r.get("ok") and r.get("load_cpu_pct") is not None and r["load_cpu_pct"] < 90]
    timed = [r for rs in rep.runs.runs.values() for r in rs
             if r and r.get("ok") and r.get("load_cpu_pct") is not None]
    if busy:
        w("")
        w(f"**In {len(busy)} of {len(timed)} runs that measured it, the load generator got less than 90% "
          "of its core (see *Every run*): the machine was busy with other work then, and those runs' "
          "rates are low.**")
    if env.get("BENCH_SKIPPED", "0") != "0":
        w("")
        w(f"**{env['BENCH_SKIPPED']} runs were skipped: the time budget (BENCH_BUDGET_S) ran out.**")
    w("")
    return md


def machine_section(rep):
    env = rep.env
    elapsed = int(env["BENCH_ELAPSED"])
    full = int(env.get("BENCH_FULL_ELAPSED") or elapsed)
    return [
        "## Machine",
        "",
        f"- CPU: {env['BENCH_CPU_MODEL']}, `nproc` = {env['BENCH_NPROC']}",
        f"- Kernel: {env['BENCH_KERNEL']}",
        f"- Rust: {env['BENCH_RUSTC']}",
        f"- Godot: {env['BENCH_GODOT_VERSION']}",
        f"- Whole script: {full // 60} min {full % 60} s"
        + (f" (the last full run); this partial run (`BENCH_ONLY={env['BENCH_ONLY_USED']}`): "
           f"{elapsed // 60} min {elapsed % 60} s" if env.get("BENCH_ONLY_USED") else ""),
        "",
    ]


def throughput_section(rep):
    runs, servers = rep.runs, rep.servers
    md = []
    w = md.append
    w("## Throughput: delivered messages per second")
    w("")
    w("Each sender sends its packets through the server to the clients its target names; a window "
      "per sender keeps at most about 4096 deliveries in flight in all (ENet 1.3 collapses when "
      "thousands of reliable packets are queued at once, see the overload table). A message is one "
      "packet delivered to one client; MB/s counts the 8-byte Godot header plus the payload.")
    w("")
    head = "| configuration | " + " | ".join(f"{NAMES[s]} msg/s" for s in servers)
    head += " | ours / minimal | " + ("ours / Godot | " if "godot" in servers else "")
    head += "loss % (" + " / ".join(servers) + ") | out of order |"
    w(head)
    w("|" + "---|" * (head.count("|") - 1))
    for cfg in rep.throughput:
        m = {s: runs.med(cfg, s, "msgs_per_s") for s in servers}
        row = f"| {rep.desc_of[cfg]} | " + " | ".join(fmt(m[s]) for s in servers)
        row += f" | {fratio(runs.paired(cfg, 'ours', 'minimal'))} | "
        if "godot" in servers:
            row += f"{fratio(runs.paired(cfg, 'ours', 'godot'))} | "
        row += " / ".join(fmt(runs.med(cfg, s, "loss_pct"), 2) for s in servers) + " | "
        row += " / ".join(fmt(runs.med(cfg, s, "out_of_order")) for s in servers) + " |"
        w(row)
    w("")
    w("MB/s (medians): " + "; ".join(
        f"{cfg}: " + ", ".join(f"{s} {fmt(runs.med(cfg, s, 'mb_per_s'), 1)}" for s in servers)
        for cfg in rep.throughput) + ".")
    w("")
    return md


def ping_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    w("## Round trip through the server (ping-pong)")
    w("")
    w("Client A sends 32 bytes to client B's id, B answers A; one round trip in flight; the load "
      "generator busy-polls. Microseconds.")
    w("")
    w("| server | p50 | p90 | p99 | mean | p50 vs minimal |")
    w("|---|---|---|---|---|---|")
    p50_min = runs.med("ping", "minimal", "rtt_p50_us")
    for s in rep.servers:
        p50 = runs.med("ping", s, "rtt_p50_us")
        r = ratio(p50, p50_min)
        w(f"| {NAMES[s]} | {fmt(p50, 1)} | {fmt(runs.med('ping', s, 'rtt_p90_us'), 1)} | "
          f"{fmt(runs.med('ping', s, 'rtt_p99_us'), 1)} | {fmt(runs.med('ping', s, 'rtt_mean_us'), 1)} | "
          f"{'n/a' if r is None else f'{(r - 1) * 100:+.0f}%'} |")
    w("")
    return md


def storm_runs(rep, size, server):
    return rep.runs.get(f"storm{size}", server)


def meshed(r):
    """A storm run that meshed: every client connected, none lost, every ADD_PEER received."""
    return bool(r and r.get("ok") and r.get("mesh_s") is not None and not r.get("clients_lost"))


def storm_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    w("## Join storms: N clients connecting at once")
    w("")
    w("N client hosts (one load process) start connecting at the same moment; the server has N "
      "slots (128, 512, 1024, 2048, 4095). *meshed*: runs in which every client connected, none "
      "was lost and every client got its N-1 ADD_PEER messages (N(N-1) reliable system messages "
      "in all). *mesh*: seconds from the first connect to the last ADD_PEER, median over the runs, "
      "a run that did not mesh counting as slowest (*no mesh*). *ADD_PEER*: the share received "
      "(median). *lost*: most clients lost in one run (never connected, or timed out by ENet "
      "after connecting); a run with a lost client cannot mesh, and ends once nothing has moved "
      "for 5 s (or at the connect timeout: 30 s, 60 s for 4095). *drops*: datagrams the server's "
      "socket dropped during the storm because its receive buffer was full (/proc/net/udp; "
      "median). RSS of the server (medians, MB): *before* the storm, *storm* one second after it "
      "ended, *peak* (VmHWM, the whole run), *left*: after everyone left at once (each client "
      "host sends ENet's disconnect and is destroyed, as a Godot client quits) and the server "
      "announced nobody to a probe client (at most 10 s, 30 s for 1000 clients: a disconnect the "
      "server did not handle leaves that client to ENet's timeout, 5 to 30 s), then 3 s more. "
      "*leave*: seconds until the probe saw nobody (median); *left behind*: most clients the "
      "server still announced when that wait ended (then *RSS left* was read with them still "
      "there).")
    w("")
    w("| clients | server | meshed | mesh (s) | connected (s) | ADD_PEER | lost | drops "
      "| RSS before | RSS storm | RSS peak | RSS left | leave (s) | left behind |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    mb = lambda v: "n/a" if v is None else f"{v / 1024:.1f}"
    for size in STORM_SIZES:
        cfg = f"storm{size}"
        for s in rep.servers:
            rs = runs.get(cfg, s)
            if not rs:
                continue
            ok = [r for r in rs if r and r.get("ok")]
            share = None
            shares = [r["add_peer_received"] / r["add_peer_expected"] for r in ok
                      if r.get("add_peer_expected")]
            if shares:
                share = statistics.median(shares)
            lost = max((r.get("clients_lost", 0) for r in ok), default=None)
            mesh = None
            if ok:
                mesh = statistics.median([float(r["mesh_s"]) if meshed(r) else float("inf") for r in ok])
            w(f"| {size} | {NAMES[s]} | {sum(1 for r in rs if meshed(r))} of {len(rs)} | "
              f"{'no mesh' if mesh == float('inf') else fmt(mesh, 2)} | "
              f"{fmt(runs.med(cfg, s, 'connect_s'), 3)} | "
              f"{'n/a' if share is None else f'{share * 100:.1f}%'} | {fmt(lost)} | "
              f"{fmt(runs.med(cfg, s, 'storm_socket_drops'))} | "
              f"{mb(runs.med(cfg, s, 'rss_before_kb'))} | {mb(runs.med(cfg, s, 'rss_after_kb'))} | "
              f"{mb(runs.med(cfg, s, 'rss_peak_kb'))} | {mb(runs.med(cfg, s, 'rss_left_kb'))} | "
              f"{fmt(runs.med(cfg, s, 'leave_s'), 1)} | "
              f"{fmt(max(runs.values(cfg, s, 'remaining_after_leave'), default=None))} |")
    w("")
    return md


def idle_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    cfgs = [f"idle{n}" for n in IDLE_SIZES if runs.get(f"idle{n}", "ours")]
    if not cfgs:
        return md
    w("## Connected idle clients: server CPU, and a ping meanwhile")
    w("")
    w("N clients connect (the 4095 in waves of 512, each wave once the previous one is "
      "announced) and stay idle, their hosts serviced every 5 ms so that they answer ENet's "
      "pings (every 500 ms each way per connection); after 2 s the server's CPU time is measured "
      "over 10 s (one core = 100%). Then clients 0 and 1 ping-pong 32-byte reliable packets "
      "through the server, 5000 round trips, the other clients serviced between round trips. "
      "Our relay server with its default settings only: the minimal relay and the Godot server "
      "busy-poll (100% of a core whatever the load).")
    w("")
    w("| clients | server CPU % (median, min–max) | ping p50 (µs) | ping p99 (µs) | clients lost while idle "
      "| server RSS (MB) |")
    w("|---|---|---|---|---|---|")
    for cfg in cfgs:
        sp = runs.spread(cfg, "ours", "idle_server_cpu_pct")
        cpu = "n/a" if sp is None else f"{sp[2]:.2f} ({sp[0]:.2f}–{sp[4]:.2f})"
        lost = max(runs.values(cfg, "ours", "idle_disconnects"), default=None)
        rss = runs.med(cfg, "ours", "server_rss_kb")
        failed = [r for r in runs.get(cfg, "ours") if not (r and r.get("ok"))]
        note = f" ({len(failed)} runs failed)" if failed else ""
        w(f"| {cfg[4:]}{note} | {cpu} | {fmt(runs.med(cfg, 'ours', 'rtt_p50_us'), 1)} | "
          f"{fmt(runs.med(cfg, 'ours', 'rtt_p99_us'), 1)} | {fmt(lost)} | "
          f"{'n/a' if rss is None else f'{rss / 1024:.1f}'} |")
    w("")
    return md


def recovery_servers(rep):
    return [s for s in ("ours", "ours_busy", "minimal", "godot") if rep.runs.get("recovery", s)]


def recovery_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    servers = recovery_servers(rep)
    if not servers:
        return md
    w("## Recovery of a lost reliable packet")
    w("")
    w("Two clients; after 200 round trips through the server (so that ENet's round-trip estimate, "
      "500 ms at first, has come down to loopback's) both turn their ENet pings off. Then, 20 "
      "times per run, after 150 ms of quiet: client 0 sends a reliable 32-byte packet to client "
      "1's id, the server relays it, and client 1's intercept (`Host::set_intercept`) drops the "
      "first datagram that carries it. Measured at client 1: the time from the dropped copy to the "
      "resent one. ENet's deadline is the server's round-trip timeout for client 1 (round-trip "
      "time + 4 variances, ENet's 1 ms clock); *RTO estimate* is client 1's own for the same link, "
      "which stands in for it, and the always-busy-polling servers resend at the deadline itself, "
      "so their gap is the deadline measured. *late*: resend gap minus the RTO estimate. Medians "
      "over the runs of each run's median; min–max over every measurement.")
    w("")
    w("| server | resend gap p50 (ms) | min–max (ms) | RTO estimate (ms) | late p50 (ms) | late, worst (ms) | not measured |")
    w("|---|---|---|---|---|---|---|")
    for s in servers:
        lo = min(runs.values("recovery", s, "resend_min_ms"), default=None)
        hi = max(runs.values("recovery", s, "resend_max_ms"), default=None)
        late = late_values(runs, s)
        w(f"| {NAMES[s]} | {fmt(runs.med('recovery', s, 'resend_p50_ms'), 2)} | "
          f"{fmt(lo, 2)}–{fmt(hi, 2)} | {fmt(runs.med('recovery', s, 'rto_estimate_ms'), 1)} | "
          f"{fmt(statistics.median([x[0] for x in late]) if late else None, 2)} | "
          f"{fmt(max((x[1] for x in late), default=None), 2)} | "
          f"{fmt(sum(runs.values('recovery', s, 'lost')))} |")
    w("")
    return md


def late_values(runs, server):
    """Per successful recovery run: (median gap - RTO estimate, largest gap - RTO estimate), ms."""
    out = []
    for r in runs.get("recovery", server):
        if r and r.get("ok") and r.get("resend_p50_ms") is not None and r.get("rto_estimate_ms") is not None:
            out.append((r["resend_p50_ms"] - r["rto_estimate_ms"], r["resend_max_ms"] - r["rto_estimate_ms"]))
    return out


def overload_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    w("## Overload (unpaced senders), reported separately")
    w("")
    w("Senders queue packets as fast as the load generator runs, without a window. Loss here is "
      "what did not arrive within the drain time (3 s without a delivery); for reliable packets that "
      "means ENet's retransmission backoff, not packets given up. What matters: the server must not "
      "disconnect anyone. Medians of every run (9 per server), with the spread: min–max and the "
      "interquartile range (IQR, first to third quartile).")
    w("")
    w("| configuration | server | runs | msg/s median | min–max | IQR | delivered | expected | loss % "
      "| server socket drops | disconnects |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for cfg in rep.overload:
        for s in rep.servers:
            sp = runs.spread(cfg, s, "msgs_per_s")
            if sp is None:
                rng = iqr = "n/a"
                n = 0
            else:
                rng = f"{fmt(sp[0])}–{fmt(sp[4])}"
                iqr = f"{fmt(sp[1])}–{fmt(sp[3])}"
                n = sp[5]
            w(f"| {rep.desc_of[cfg]} | {NAMES[s]} | {n} | {fmt(runs.med(cfg, s, 'msgs_per_s'))} | {rng} | {iqr} | "
              f"{fmt(runs.med(cfg, s, 'delivered'))} | {fmt(runs.med(cfg, s, 'expected'))} | "
              f"{fmt(runs.med(cfg, s, 'loss_pct'), 2)} | {fmt(runs.med(cfg, s, 'server_socket_drops'))} | "
              f"{fmt(max(runs.values(cfg, s, 'disconnects'), default=None))} |")
    w("")
    paired = [(cfg, runs.paired(cfg, "ours", "minimal")) for cfg in rep.overload]
    paired = [(c, r) for c, r in paired if r is not None]
    if paired:
        w("Ours / minimal relay, median of the per-round ratios: "
          + ", ".join(f"{c} {r:.2f}x" for c, r in paired) + ".")
        w("")
    return md


def verdict(ok):
    return "**holds**" if ok else "**MISSED**"


def targets_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    w("## Targets")
    w("")
    w("Each from this run; ratios pair the servers' runs of the same round.")
    w("")
    # 4095-client storm.
    ours = storm_runs(rep, 4095, "ours")
    if ours:
        n_ok = sum(1 for r in ours if meshed(r))
        ok_runs = [r for r in ours if r and r.get("ok")]
        shares = [r["add_peer_received"] / r["add_peer_expected"] * 100 for r in ok_runs if r.get("add_peer_expected")]
        lost = [r.get("clients_lost", 0) for r in ok_runs]
        others = []
        for s in ("minimal", "godot"):
            rs = storm_runs(rep, 4095, s)
            if rs:
                ok2 = [r for r in rs if r and r.get("ok")]
                sh = [r["add_peer_received"] / r["add_peer_expected"] * 100 for r in ok2 if r.get("add_peer_expected")]
                head = f"{NAMES[s]} meshed {sum(1 for r in rs if meshed(r))} of {len(rs)}"
                if not sh:
                    others.append(head + " (no run completed)")
                    continue
                others.append(head + f", ADD_PEER {statistics.median(sh):.1f}% (median), "
                              f"at most {fmt(max(r.get('clients_lost', 0) for r in ok2))} lost")
        miss = "" if n_ok == len(ours) else (
            f"; misses by {len(ours) - n_ok} of {len(ours)} runs: ADD_PEER received "
            f"{fmt(min(shares) if shares else None, 1)}–{fmt(max(shares) if shares else None, 1)}%, "
            f"{fmt(min(lost) if lost else None)}–{fmt(max(lost) if lost else None)} clients lost per run")
        w(f"- A 4095-client join storm meshes with no client lost, in every run: {verdict(n_ok == len(ours))} "
          f"(ours meshed {n_ok} of {len(ours)} runs{miss}; same storm: " + "; ".join(others) + ").")
    # 1000-client mesh within 2 s.
    ours = storm_runs(rep, 1000, "ours")
    if ours:
        times = [float(r["mesh_s"]) if meshed(r) else float("inf") for r in ours if r and r.get("ok")]
        if times:
            worst = max(times)
            ok = worst <= 2.0 and len(times) == len(ours)
            detail = ", ".join("no mesh" if t == float("inf") else f"{t:.2f} s" for t in times)
            w(f"- A 1000-client mesh within 2 s: {verdict(ok)} (ours: {detail}"
              + ("" if ok else (f"; the slowest run is {worst / 2.0:.2f}x the target" if worst != float("inf")
                                else "; a run did not mesh")) + ").")
    # RSS after a 1000-client storm that everyone left.
    ratios = []
    for r in storm_runs(rep, 1000, "ours"):
        if r and r.get("ok") and r.get("rss_left_kb") and r.get("rss_before_kb"):
            ratios.append(r["rss_left_kb"] / r["rss_before_kb"])
    if ratios:
        worst = max(ratios)
        others = []
        for s in ("minimal", "godot"):
            q = [r["rss_left_kb"] / r["rss_before_kb"] for r in storm_runs(rep, 1000, s)
                 if r and r.get("ok") and r.get("rss_left_kb") and r.get("rss_before_kb")]
            if q:
                others.append(f"{NAMES[s]} {statistics.median(q):.2f}x")
        w(f"- RSS after a 1000-client storm in which everyone then leaves at most 2x the RSS before: "
          f"{verdict(worst <= 2.0)} (ours {', '.join(f'{q:.2f}x' for q in ratios)}: "
          f"{fmt(runs.med('storm1000', 'ours', 'rss_before_kb'))} kB before, "
          f"{fmt(runs.med('storm1000', 'ours', 'rss_after_kb'))} kB one second after the storm, "
          f"{fmt(runs.med('storm1000', 'ours', 'rss_left_kb'))} kB after everyone left (medians)"
          + ("" if worst <= 2.0 else f"; misses by {worst / 2.0:.2f}x") + "; "
          + ", ".join(others) + ").")
    # Throughput against the minimal relay and Godot.
    ratios = [(cfg, runs.paired(cfg, "ours", "minimal")) for cfg in rep.throughput]
    known = [r for r in ratios if r[1] is not None]
    if known:
        worst = min(known, key=lambda r: r[1])
        ok = all(r[1] >= 0.95 for r in known)
        w(f"- Throughput at least 0.95x the minimal relay on every paced configuration: {verdict(ok)} "
          f"(lowest {worst[1]:.3f}x in {worst[0]}"
          + ("" if ok else f", {(0.95 - worst[1]) / 0.95 * 100:.1f}% short") + "; all: "
          + ", ".join(f"{c} {r:.2f}x" for c, r in known) + ").")
    if "godot" in rep.servers:
        bc = [(cfg, runs.paired(cfg, "ours", "godot")) for cfg in rep.throughput
              if cfg.startswith(BROADCAST_PREFIXES)]
        bc = [r for r in bc if r[1] is not None]
        if bc:
            worst = min(bc, key=lambda r: r[1])
            ok = all(r[1] >= 1.5 for r in bc)
            w(f"- Throughput at least 1.5x Godot on the broadcast configurations: {verdict(ok)} "
              f"(lowest {worst[1]:.2f}x in {worst[0]}"
              + ("" if ok else f", {(1.5 - worst[1]) / 1.5 * 100:.1f}% short") + "; all: "
              + ", ".join(f"{c} {r:.2f}x" for c, r in bc) + ").")
    r = runs.paired("ping", "ours", "minimal", "rtt_p50_us")
    if r is not None:
        w(f"- Round-trip p50 within 10% of the busy-polling minimal relay: {verdict(r <= 1.10)} "
          f"(ours {runs.med('ping', 'ours', 'rtt_p50_us'):.1f} µs with default settings, minimal "
          f"{runs.med('ping', 'minimal', 'rtt_p50_us'):.1f} µs (medians); per round ours is "
          f"{(r - 1) * 100:+.0f}% (median)" + ("" if r <= 1.10 else f": {(r - 1.10) * 100:.0f} points over") + ").")
    # Idle CPU.
    for n, limit, word in ((1000, 3.0, "at most"), (100, 1.0, "under")):
        v = runs.values(f"idle{n}", "ours", "idle_server_cpu_pct")
        if v:
            worst = max(v)
            ok = worst <= limit if word == "at most" else worst < limit
            w(f"- Idle CPU with {n} idle connected clients {word} {limit:g}% of a core: {verdict(ok)} "
              f"(ours {', '.join(f'{x:.2f}%' for x in v)}"
              + ("" if ok else f"; {worst / limit:.1f}x the limit") + ").")
    v = runs.values("idle4095", "ours", "idle_server_cpu_pct")
    failed = [r for r in runs.get("idle4095", "ours") if not (r and r.get("ok"))]
    if failed and not v:
        why = "; ".join(sorted({(r or {}).get("error") or "no output" for r in failed}))
        w(f"- (Reported, no target) 4095 idle connected clients: not measured, ours never had them all "
          f"connected and announced ({len(failed)} of {len(failed)} runs: {why}).")
    if v:
        w(f"- (Reported, no target) 4095 idle connected clients: ours {', '.join(f'{x:.2f}%' for x in v)} of a core, "
          f"ping p50 {fmt(runs.med('idle4095', 'ours', 'rtt_p50_us'), 1)} µs meanwhile.")
    # Recovery.
    late = late_values(runs, "ours")
    if late:
        p50 = statistics.median([x[0] for x in late])
        worst = max(x[1] for x in late)
        busy = runs.paired("recovery", "ours", "ours_busy", "resend_p50_ms")
        mini = runs.paired("recovery", "ours", "minimal", "resend_p50_ms")
        ok = all(x[0] <= 5.0 for x in late)
        w(f"- A lost reliable packet resent within 5 ms of ENet's deadline with default poll settings: "
          f"{verdict(ok)} (ours: the resend came {p50:+.2f} ms after the RTO estimate (median of the runs' "
          f"medians), at worst {worst:+.2f} ms; gap ours / always-busy-polling ours "
          f"{fratio(busy)}, ours / minimal {fratio(mini)}, per round"
          + ("" if ok else f"; {max(x[0] for x in late) - 5.0:.2f} ms over in the worst run") + ").")
    dis = sum(max(runs.values(cfg, "ours", "disconnects"), default=0) for cfg in rep.overload)
    w(f"- Overload: our server disconnected **{int(dis)}** clients.")
    w("- No heap allocation per relayed packet in our code (`tests/relay_alloc.rs`, a counting "
      "global allocator around the server's poll and its application's get_packet):")
    w("")
    w("```text")
    for line in rep.alloc_lines or ["(no output: the test did not run)"]:
        w(line)
    w("```")
    w("")
    return md


def notes_section(rep):
    return [
        "## Reading these numbers",
        "",
        "- In the throughput runs both processes use their whole core (the servers busy-poll; the "
        "load generator never sleeps), so a rate is what the server and a one-thread load generator "
        "reach together. Godot's lower rates are Godot's own; between ours and the minimal relay, a "
        "difference smaller than the run-to-run spread (see *Every run*) is noise.",
        "- Both relays run on `enet-wrapper`, whose `Host` looks at every incoming datagram in Rust "
        "(the intercept that counts what ENet rejects, `enet_wrapper::inspect`); the minimal relay is "
        "therefore the ceiling of ENet *through enet-wrapper*, and that inspection shows in both "
        "profiles below. The load generator's client hosts pay it too.",
        "- ENet scans every peer slot of a host on each send pass, twice per `enet_host_service` "
        "call, so a host's idle poll costs more the more slots it has: our server has max clients + "
        "64 spare slots, the minimal relay max clients exactly.",
        "",
    ]


def perf_section(rep):
    profiles = rep.profiles
    md = []
    w = md.append
    if any(profiles.values()):
        shown = [s for s in profiles if profiles[s]]
        w("## Where the server's CPU time goes (perf)")
        w("")
        w("`perf record -F 2999 -p <server>` while the load generator runs `" + rep.env["BENCH_PROFILE_ARGS"]
          + "`; share of the server process's samples.")
        w("")
        cat_names = list(profiles[shown[0]][0].keys())
        w("| | " + " | ".join(NAMES[s] for s in shown) + " |")
        w("|---|" + "---|" * len(shown))
        for c in cat_names:
            w(f"| {c} | " + " | ".join(f"{profiles[s][0][c]:.1f}%" for s in shown) + " |")
        w("")
        if profiles.get("ours"):
            w("Our Rust symbols in the relay server's profile (above 0.05%):")
            w("")
            w("| share | symbol |")
            w("|---|---|")
            for pct, sym in sorted(profiles["ours"][1], reverse=True):
                if pct >= 0.05:
                    w(f"| {pct:.2f}% | `{sym[:110]}` |")
            w("")
    if rep.connect_top is not None:
        w("The same for our relay server while 1000 clients connect at once (`"
          + rep.env["BENCH_CONNECT_PROFILE_ARGS"] + "`), the ten hottest symbols:")
        w("")
        w("| share | where | symbol |")
        w("|---|---|---|")
        for pct, dso, sym in rep.connect_top[:10]:
            w(f"| {pct:.1f}% | {dso} | `{sym[:100]}` |")
        w("")
    return md


def criterion_section(rep):
    md = []
    w = md.append
    w("## Criterion micro-benchmarks")
    w("")
    w("`cargo bench --bench protocol --bench relay --bench loopback -- --warm-up-time 1 "
      "--measurement-time 2` (median time per iteration).")
    w("")
    if rep.criterion:
        w("| benchmark | median |")
        w("|---|---|")
        for name, v in sorted(rep.criterion, key=crit_key):
            w(f"| `{name}` | {ns(v)} |")
        w("")
        w("`relay/route/<target>/<n>`: `route()` plus walking the destinations over a `BTreeMap` of n "
          "client ids, as the server does per packet. `loopback/round_trip/*`: client `send` to the "
          "server, server `poll` until it has it and `send` back, client `poll` until it has it, over "
          "127.0.0.1; default (flush once per poll) and `flush_every_send(true)`.")
    else:
        w("(criterion was skipped)")
    w("")
    return md


def run_cell(cid, r):
    """One run in the *Every run* table."""
    if not (r and r.get("ok")):
        return "failed" + (f": {r.get('error')}" if r and r.get("error") else "")
    if cid.startswith("storm"):
        got = r.get("add_peer_received", 0) / r["add_peer_expected"] * 100 if r.get("add_peer_expected") else 0
        mesh = f"mesh {r['mesh_s']:.2f} s" if meshed(r) else f"no mesh ({got:.1f}% ADD_PEER)"
        cell = f"{mesh}, {r.get('clients_lost', 0)} lost"
        if r.get("rss_left_kb") is not None:
            cell += f", RSS {fmt(r.get('rss_before_kb'))}/{fmt(r.get('rss_peak_kb'))}/{fmt(r['rss_left_kb'])} kB"
        return cell
    if cid.startswith("idle"):
        return f"CPU {fmt(r.get('idle_server_cpu_pct'), 2)}%, ping p50 {fmt(r.get('rtt_p50_us'), 1)} µs"
    if cid.startswith("recovery"):
        return f"resend p50 {fmt(r.get('resend_p50_ms'), 2)} ms (RTO est. {fmt(r.get('rto_estimate_ms'), 1)} ms)"
    if cid == "ping":
        return fmt(r.get("rtt_p50_us"), 1, " µs p50")
    cell = fmt(r.get("msgs_per_s"), 0, " msg/s")
    if r.get("load_cpu_pct") is not None:
        cell += f" (load CPU {r['load_cpu_pct']:.0f}%)"
    return cell


def every_run_section(rep):
    md = []
    w = md.append
    w("## Every run")
    w("")
    w("In the order they ran. *load CPU*: the CPU time the load generator (a busy loop that never "
      "sleeps) got, over wall time: well below 100% means the shared machine took its core away "
      "during that run. Storms: RSS before / peak / after everyone left.")
    w("")
    rows = []
    for c in rep.configs:
        cid = c[0]
        for s in rep.servers + ["ours_busy"]:
            runs = rep.runs.get(cid, s)
            if runs or (s != "ours_busy" and config_servers(c, rep.servers) and s in config_servers(c, rep.servers)):
                rows.append((cid, s, [run_cell(cid, r) for r in runs]))
    width = max([len(r[2]) for r in rows] + [1])
    w("| configuration | server | " + " | ".join(f"run {i}" for i in range(1, width + 1)) + " |")
    w("|---|---|" + "---|" * width)
    for cid, s, cells in rows:
        w(f"| {cid} | {s} | " + " | ".join(cells) + " |")
    w("")
    return md


def config_servers(config, servers):
    """The servers of this run that a configuration names."""
    kinds = config[5]
    if kinds == "all":
        return list(servers)
    return [s for s in kinds.split() if s in servers or (s == "ours_busy" and "ours" in servers)]


def commands_section(rep):
    env = rep.env
    md = []
    w = md.append
    w("## Commands")
    w("")
    w("Build: `cargo build --release --features relay-server --bin relay-server --example minimal_relay --example load`. "
      "Servers (PORT changes per run; each run starts a fresh server; MAX_CLIENTS is given per "
      "configuration below: 32, the default of our relay server and of Godot's `create_server`, "
      "except for the storms and idle runs; *ours, always busy-polling* is ours with "
      "`--busy-poll-us 3600000000`). The script raises the open-file limit to 8192 (`ulimit -n`): "
      "each client host of the load generator is a socket.")
    w("")
    w("```sh")
    w(env["BENCH_CMD_OURS"])
    if env.get("BENCH_CMD_OURS_BUSY"):
        w(env["BENCH_CMD_OURS_BUSY"])
    w(env["BENCH_CMD_MINIMAL"])
    w(env["BENCH_CMD_GODOT"])
    w("```")
    w("")
    w("Load generator, one line per configuration:")
    w("")
    w("```sh")
    for cid, desc, args, variant, max_clients, kinds in rep.configs:
        w(f"# {cid}: {desc}; servers: MAX_CLIENTS={max_clients}"
          + (", relay off (--no-relay / BENCH_RELAY=0)" if variant == "norelay" else "")
          + ("" if kinds == "all" else f"; run against: {kinds}"))
        w(f"{env['BENCH_PIN_LOAD']} target/release/examples/load --server 127.0.0.1:PORT "
          f"--server-pid SERVER_PID --label {cid} --time-limit 20 {args}".strip())
    w("```")
    w("")
    w("The load generator (`examples/load.rs`; `load --help` lists the same):")
    w("")
    w("```text")
    for line in rep.usage:
        w(line)
    w("```")
    w("")
    w("![delivered messages per second](BENCHMARKS.svg)")
    w("")
    return md


SECTIONS = (intro_section, machine_section, targets_section, throughput_section, ping_section,
            storm_section, idle_section, recovery_section, overload_section, notes_section,
            perf_section, criterion_section, every_run_section, commands_section)


def markdown(rep, kept=""):
    """BENCHMARKS.md: the report, then the kept section if there is one."""
    md = [line for section in SECTIONS for line in section(rep)]
    return "\n".join(md) + ("\n" + kept if kept else "")


# ---- the chart -----------------------------------------------------------------------------

def chart(rep):
    """BENCHMARKS.svg: a bar per server and configuration (throughput, then overload) of the
    median delivered messages per second; below it, when storms ran, a bar per server and storm
    size of the share of ADD_PEERs received (median), labelled with the mesh time."""
    runs, servers = rep.runs, rep.servers
    throughput, overload = rep.throughput, rep.overload
    chart_cfgs = throughput + overload
    sizes = [n for n in STORM_SIZES if any(runs.get(f"storm{n}", s) for s in servers)]
    W, H = 960, 470
    storm_h = 300 if sizes else 0
    left, right, top, bottom = 80, 20, 50, 130
    plot_w, plot_h = W - left - right, H - top - bottom
    vmax = max([runs.med(c, s, "msgs_per_s") or 0 for c in chart_cfgs for s in servers] + [1])
    # A round step for the grid: 1, 2, 2.5 or 5 times a power of ten, at most 6 steps to vmax.
    step = 10 ** (len(str(int(vmax))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if vmax / (step * m) <= 6:
            step = step * m
            break
    ymax = step * (int(vmax / step) + 1)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + storm_h}" '
           f'viewBox="0 0 {W} {H + storm_h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H + storm_h}" fill="white"/>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16">Delivered messages per '
           f'second (median of the runs), per configuration and server</text>']
    t = 0
    while t <= ymax + 1e-9:
        y = top + plot_h - t / ymax * plot_h
        svg.append(f'<line x1="{left}" y1="{y:.1f}" x2="{W - right}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{t / 1e6:g}M" if ymax >= 1e6 else f"{t / 1e3:g}k"
        svg.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        t += step
    svg.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{W - right}" y2="{top + plot_h}" stroke="#333"/>')
    group_w = plot_w / max(len(chart_cfgs), 1)
    bar_w = group_w * 0.8 / max(len(servers), 1)
    for i, cfg in enumerate(chart_cfgs):
        gx = left + i * group_w + group_w * 0.1
        for j, s in enumerate(servers):
            v = runs.med(cfg, s, "msgs_per_s") or 0
            h = v / ymax * plot_h
            x = gx + j * bar_w
            y = top + plot_h - h
            svg.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                       f'fill="{COLORS[s]}"><title>{NAMES[s]} {cfg}: {v:,.0f} msg/s</title></rect>')
            if v > 0:
                short = f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"
                svg.append(f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                           f'font-size="9">{short}</text>')
        cx = left + i * group_w + group_w / 2
        svg.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{cfg}</text>')
    for j, s in enumerate(servers):
        lx = left + j * 200
        ly = H - 48
        svg.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{COLORS[s]}"/>')
        svg.append(f'<text x="{lx + 18}" y="{ly}">{NAMES[s]}</text>')
    if overload and throughput:
        sx = left + len(throughput) * group_w
        svg.append(f'<line x1="{sx:.1f}" y1="{top}" x2="{sx:.1f}" y2="{top + plot_h + 30}" '
                   f'stroke="#888" stroke-dasharray="4,4"/>')
        svg.append(f'<text x="{sx + 6:.1f}" y="{top + 12}" font-size="11" fill="#555">unpaced '
                   'overload (not a throughput test)</text>')
    svg.append(f'<text x="{left}" y="{H - 20}" font-size="10">bcast = broadcast (target 0), excl = '
               'all but one (target -n), peer = one peer each; rel/unrel = reliable/unreliable; '
               '8/32 = clients.</text>')
    svg.append(f'<text x="{left}" y="{H - 7}" font-size="10">32-byte payloads, no compression, '
               'server on CPU 0, load generator on CPU 1. Generated by scripts/bench.sh.</text>')
    if sizes:
        svg.extend(storm_chart(rep, sizes, H, W, left, right))
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def storm_chart(rep, sizes, y0, W, left, right):
    """The storm panel of the chart, from y0 down, 300 high."""
    runs, servers = rep.runs, rep.servers
    top, plot_h = y0 + 50, 180
    plot_w = W - left - right
    out = [f'<text x="{W / 2}" y="{y0 + 24}" text-anchor="middle" font-size="16">Join storms: '
           'ADD_PEER messages received (median), mesh time above the bar</text>']
    for pct in (0, 25, 50, 75, 100):
        y = top + plot_h - pct / 100 * plot_h
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{W - right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{pct}%</text>')
    group_w = plot_w / len(sizes)
    bar_w = group_w * 0.8 / max(len(servers), 1)
    for i, n in enumerate(sizes):
        gx = left + i * group_w + group_w * 0.1
        for j, s in enumerate(servers):
            rs = [r for r in runs.get(f"storm{n}", s) if r and r.get("ok") and r.get("add_peer_expected")]
            share = statistics.median([r["add_peer_received"] / r["add_peer_expected"] for r in rs]) if rs else 0.0
            all_runs = runs.get(f"storm{n}", s)
            n_mesh = sum(1 for r in all_runs if meshed(r))
            times = [float(r["mesh_s"]) if meshed(r) else float("inf") for r in rs]
            mesh = statistics.median(times) if times else float("inf")
            h = share * plot_h
            x = gx + j * bar_w
            y = top + plot_h - h
            label = "no mesh" if mesh == float("inf") else f"{mesh:.1f} s"
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                       f'fill="{COLORS[s]}"><title>{NAMES[s]} storm{n}: {share * 100:.1f}% ADD_PEER, '
                       f'meshed {n_mesh} of {len(all_runs)}</title></rect>')
            out.append(f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                       f'font-size="9">{label}</text>')
        cx = left + i * group_w + group_w / 2
        out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{n} clients</text>')
    out.append(f'<text x="{left}" y="{top + plot_h + 40}" font-size="10">All clients connect at once; '
               'the mesh is every client told of every other (N(N-1) ADD_PEERs) with no client lost. '
               'Colours as above.</text>')
    return out


# ---- main ----------------------------------------------------------------------------------

def load_report(results_path, configs_path, criterion_dir, alloc_log, load_rs, env):
    raw_dir = os.path.dirname(results_path)
    return Report(
        env=env,
        configs=read_configs(configs_path),
        runs=Runs(read_runs(results_path)),
        servers=env["BENCH_SERVERS"].split(),
        criterion=read_criterion(criterion_dir),
        alloc_lines=read_alloc_lines(alloc_log),
        profiles={s: read_profile(os.path.join(raw_dir, f"perf-{s}.txt")) for s in ("ours", "minimal")},
        connect_top=read_hot_symbols(os.path.join(raw_dir, "perf-connect-ours.txt")),
        usage=read_usage(load_rs),
    )


def main(argv=None, env=None):
    parser = argparse.ArgumentParser(description="Writes BENCHMARKS.md and BENCHMARKS.svg from "
                                     "the raw results of scripts/bench.sh.")
    parser.add_argument("results", help="target/bench/results.jsonl")
    parser.add_argument("configs", help="target/bench/configs.txt")
    parser.add_argument("criterion_dir", help="target/criterion")
    parser.add_argument("alloc_log", help="target/bench/relay_alloc.log")
    parser.add_argument("--out-dir", default=".", help="where BENCHMARKS.md and BENCHMARKS.svg go")
    parser.add_argument("--load-rs", default="examples/load.rs",
                        help="the file whose //! usage block is quoted")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    rep = load_report(args.results, args.configs, args.criterion_dir, args.alloc_log, args.load_rs, env)
    md_path = os.path.join(args.out_dir, "BENCHMARKS.md")
    md = markdown(rep, kept_section(md_path))
    svg = chart(rep)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(md)
    with open(os.path.join(args.out_dir, "BENCHMARKS.svg"), "w", encoding="utf-8") as f:
        f.write(svg)
    print("wrote BENCHMARKS.md and BENCHMARKS.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
