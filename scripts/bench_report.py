#!/usr/bin/env python3
"""Writes BENCHMARKS.md and BENCHMARKS.svg from the raw results of a scripts/bench.sh run.

Usage (scripts/bench.sh runs it from the repository root):

    scripts/bench_report.py RESULTS CONFIGS CRITERION_DIR ALLOC_LOG [--out-dir DIR] [--load-rs FILE]

RESULTS        target/bench/results.jsonl: one line per run,
               {"bench_server": ..., "config": ..., "rep": N, "result": <load's JSON line or null>}
CONFIGS        target/bench/configs.txt: id|description|relay|max clients|reps|load arguments
CRITERION_DIR  target/criterion (<bench>/new/benchmark.json and estimates.json)
ALLOC_LOG      target/bench/relay_alloc.log (the output of tests/relay_alloc.rs)
--out-dir      where BENCHMARKS.md and BENCHMARKS.svg are written (default: the current directory)
--load-rs      the file whose `//!` usage block is quoted (default: examples/load.rs)

perf reports (perf-ours.txt, perf-minimal.txt, perf-connect-ours.txt) are read from the directory
of RESULTS. The sections of an existing BENCHMARKS.md between <!-- rpc-paths:begin --> and
<!-- rpc-paths:end --> (written by scripts/bench_rpc_paths.sh) and between <!-- bench_ws:begin -->
and <!-- bench_ws:end --> (scripts/bench_ws.sh) are carried over unchanged, in that order.

Environment (set by scripts/bench.sh): BENCH_SERVERS, BENCH_REPS_USED, BENCH_QUICK_USED,
BENCH_SKIPPED, BENCH_RUN_DATE, BENCH_GIT, BENCH_ELAPSED, BENCH_CPU_MODEL, BENCH_NPROC,
BENCH_KERNEL, BENCH_RUSTC, BENCH_GODOT_VERSION, BENCH_CMD_OURS, BENCH_CMD_MINIMAL,
BENCH_CMD_GODOT, BENCH_PIN_LOAD, BENCH_PROFILE_ARGS, BENCH_CONNECT_PROFILE_ARGS.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys
from dataclasses import dataclass

NAMES = {"ours": "ours (relay_server)", "minimal": "minimal relay", "godot": "Godot 3.2"}
COLORS = {"ours": "#d9480f", "minimal": "#1c7ed6", "godot": "#478061"}
# The sections other scripts write into BENCHMARKS.md: (begin marker, end marker), in report order.
KEPT_MARKERS = [("<!-- rpc-paths:begin -->", "<!-- rpc-paths:end -->"),
                ("<!-- bench_ws:begin -->", "<!-- bench_ws:end -->")]


# ---- reading the inputs --------------------------------------------------------------------

def read_configs(path):
    """The configurations of configs.txt: (id, description, load arguments, relay|norelay,
    max clients), in order."""
    configs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                cid, desc, variant, max_clients, _reps, args = line.split("|", 5)
                configs.append((cid, desc, args, variant, max_clients))
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
    cats = {"Rust (src/, enet-wrapper, std)": 0.0, "ENet (C)": 0.0, "libc (malloc, free, syscall stubs)": 0.0,
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
                cats["libc (malloc, free, syscall stubs)"] += pct
            elif dso in ("relay-server", "relay_server", "minimal_relay"):
                if "::" in sym or sym.startswith("<") or sym.startswith("_ZN"):
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
      "`--busy-poll-us=1000` µs after traffic, then blocks in the socket up to 100 ms), "
      "`--compression none`.")
    w("- **minimal**: `examples/minimal_relay.rs`, the ceiling: a relay written directly on "
      "`enet-wrapper` that receives, checks the header's source, reads the target and hands the same "
      "packet to `send_many` for each destination, busy-polling `service(0)`.")
    w("- **Godot 3.2**: the real engine (`godot3-server`) running `benches/godot/bench_server.gd`: a "
      "`NetworkedMultiplayerENet` server with relay on, `poll()` once per frame and every packet taken "
      "with `get_packet()`, `low_processor_usage_mode_sleep_usec = 0`.")
    w("")
    w("No compression anywhere (Godot 3.2's default). The server runs pinned to CPU 0 and the load "
      "generator (`examples/load.rs`, one thread, all its clients in one process) to CPU 1. "
      f"Each configuration ran {env['BENCH_REPS_USED']} times per server (the connect and overload "
      "tests at most 3 times) in rounds: in each round the three servers run back to back, taking "
      "turns going first. Tables show medians; ratios are medians of the per-round ratios, which "
      "hold better than ratios of medians when the shared machine slows down for a while.")
    if env.get("BENCH_QUICK_USED") == "1":
        w("")
        w("**Quick mode (BENCH_QUICK=1): a tenth of the packets and one repetition. Not a real "
          "measurement.**")
    if env.get("BENCH_SKIPPED", "0") != "0":
        w("")
        w(f"**{env['BENCH_SKIPPED']} runs were skipped: the time budget (BENCH_BUDGET_S) ran out.**")
    w("")
    return md


def machine_section(rep):
    env = rep.env
    elapsed = int(env["BENCH_ELAPSED"])
    return [
        "## Machine",
        "",
        f"- CPU: {env['BENCH_CPU_MODEL']}, `nproc` = {env['BENCH_NPROC']}",
        f"- Kernel: {env['BENCH_KERNEL']}",
        f"- Rust: {env['BENCH_RUSTC']}",
        f"- Godot: {env['BENCH_GODOT_VERSION']}",
        f"- Whole script: {elapsed // 60} min {elapsed % 60} s",
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


def connect_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    w("## 1000 clients connecting")
    w("")
    w("1000 client hosts start connecting at once (medians of up to 3 runs). *connected*: until "
      "the last one is connected. *mesh*: until every client got its 999 ADD_PEER messages "
      "(999,000 reliable system messages in all; a run where that did not finish within 30 s counts "
      "as slowest, *ADD_PEER received* says how far it got). *clients lost*: most clients that lost "
      "their connection (ENet timeouts) in one run. *client datagrams sent*: UDP datagrams from all "
      "clients, nearly all acknowledgements; *server socket drops*: those the kernel dropped because "
      "the server's UDP receive buffer (256 KiB, set by ENet) was full, which sets off ENet's "
      "retransmission backoff. "
      "Memory: the server's VmRSS growth from before the first connect to one second after the end, "
      "per client; ENet allocates its peer slots (max clients) up front, so they are in *before*. "
      "With relay on, the growth is mostly the high-water mark of the queued ADD_PEER messages, "
      "which the C allocator keeps; the relay-off rows measure the connections alone.")
    w("")
    w("| server | relay | connected (s) | mesh (s) | ADD_PEER received | clients lost | client datagrams sent "
      "| server socket drops | RSS before (kB) | RSS after (kB) | bytes per peer |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for cfg, relay in (("connect1000", "on"), ("connect1000_norelay", "off")):
        for s in rep.servers:
            recv = runs.med(cfg, s, "add_peer_received")
            exp = runs.med(cfg, s, "add_peer_expected")
            share = "n/a" if relay == "off" or recv is None or not exp else f"{recv / exp * 100:.1f}%"
            lost = max(runs.values(cfg, s, "disconnects"), default=None)
            w(f"| {NAMES[s]} | {relay} | {fmt(runs.med(cfg, s, 'connect_s'), 3)} | "
              f"{fmt_mesh(runs.med_mesh(cfg, s)) if relay == 'on' else '-'} | {share} | {fmt(lost)} | "
              f"{fmt(runs.med(cfg, s, 'client_datagrams_sent'))} | {fmt(runs.med(cfg, s, 'server_socket_drops'))} | "
              f"{fmt(runs.med(cfg, s, 'rss_before_kb'))} | {fmt(runs.med(cfg, s, 'rss_after_kb'))} | "
              f"{fmt(runs.med(cfg, s, 'rss_per_peer_bytes'))} |")
    w("")
    return md


def overload_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    w("## Overload (unpaced senders), reported separately")
    w("")
    w("Senders queue packets as fast as the load generator runs, without a window. Loss here is "
      "what did not arrive within the drain time (3 s without a delivery); for reliable packets that "
      "means ENet's retransmission backoff, not packets given up. What matters: the server must not "
      "disconnect anyone.")
    w("")
    w("| configuration | server | msg/s | delivered | expected | loss % | server socket drops | disconnects |")
    w("|---|---|---|---|---|---|---|---|")
    for cfg in rep.overload:
        for s in rep.servers:
            w(f"| {rep.desc_of[cfg]} | {NAMES[s]} | {fmt(runs.med(cfg, s, 'msgs_per_s'))} | "
              f"{fmt(runs.med(cfg, s, 'delivered'))} | {fmt(runs.med(cfg, s, 'expected'))} | "
              f"{fmt(runs.med(cfg, s, 'loss_pct'), 2)} | {fmt(runs.med(cfg, s, 'server_socket_drops'))} | "
              f"{fmt(max(runs.values(cfg, s, 'disconnects'), default=None))} |")
    w("")
    return md


def targets_section(rep):
    runs = rep.runs
    md = []
    w = md.append
    w("## Targets")
    w("")
    ratios = [(cfg, runs.paired(cfg, "ours", "minimal")) for cfg in rep.throughput]
    known = [r for r in ratios if r[1] is not None]
    worst = min(known, key=lambda r: r[1]) if known else None
    if worst:
        ok = all(r[1] >= 0.9 for r in known)
        w(f"- Throughput at least 0.9x the minimal relay in every configuration: "
          f"**{'holds' if ok else 'MISSED'}** (lowest ratio {worst[1]:.2f}x in {worst[0]}; all: "
          + ", ".join(f"{c} {r:.2f}x" for c, r in known) + "; the unpaced overload runs are not "
          "throughput measurements and are left out, see their table).")
    p50_ours = runs.med("ping", "ours", "rtt_p50_us")
    p50_min = runs.med("ping", "minimal", "rtt_p50_us")
    r = ratio(p50_ours, p50_min)
    if r is not None:
        w(f"- Round-trip p50 within 10% of the minimal relay's: "
          f"**{'holds' if r <= 1.10 else 'MISSED'}** (ours {p50_ours:.1f} µs with default settings, "
          f"minimal {p50_min:.1f} µs busy-polling: {(r - 1) * 100:+.0f}%).")
    c = runs.med("connect1000", "ours", "connect_s")
    connect_runs = runs.get("connect1000", "ours") + runs.get("connect1000_norelay", "ours")
    all_connected = bool(connect_runs) and all(r and r.get("connect_s") is not None for r in connect_runs)
    lost = max(runs.values("connect1000", "ours", "disconnects"), default=0)
    if c is not None:
        storm = runs.get("connect1000", "ours")
        w(f"- 1000 clients connect to one server: **{'holds' if all_connected else 'MISSED'}** "
          f"({c:.3f} s until every client was connected; until every ADD_PEER arrived: "
          f"{fmt_mesh(runs.med_mesh('connect1000', 'ours'))} (median, seconds), in "
          f"{sum(1 for r in storm if r and r.get('mesh_s') is not None)}"
          f" of {len(storm)} runs within 30 s, at most {lost:.0f} "
          f"clients lost to ENet timeouts during that storm; RSS growth per peer "
          f"{fmt(runs.med('connect1000', 'ours', 'rss_per_peer_bytes'))} bytes with relay on, "
          f"{fmt(runs.med('connect1000_norelay', 'ours', 'rss_per_peer_bytes'))} bytes with relay off).")
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


def run_cell(cid, key, r):
    """One run in the *Every run* table."""
    unit = {"rtt_p50_us": " µs p50", "connect_s": " s", "msgs_per_s": " msg/s"}[key]
    if r and r.get("ok") and r.get(key) is not None:
        cell = fmt(r[key], {"connect_s": 3, "rtt_p50_us": 1}.get(key, 0), unit)
        if cid == "connect1000":
            cell += f", mesh {fmt_mesh(r.get('mesh_s') if r.get('mesh_s') is not None else float('inf'))}"
            cell += f", {r.get('disconnects', 0)} lost"
        elif r.get("load_cpu_pct") is not None:
            cell += f" (load CPU {r['load_cpu_pct']:.0f}%)"
        return cell
    return "failed" + (f": {r.get('error')}" if r and r.get("error") else "")


def every_run_section(rep):
    reps = int(rep.env["BENCH_REPS_USED"])
    md = []
    w = md.append
    w("## Every run")
    w("")
    w("In the order they ran. *load CPU*: the CPU time the load generator (a busy loop that never "
      "sleeps) got, over wall time: well below 100% means the shared machine took its core away "
      "during that run.")
    w("")
    w("| configuration | server | " + " | ".join(f"run {i}" for i in range(1, reps + 1)) + " |")
    w("|---|---|" + "---|" * reps)
    for cid, _, _, _, _ in rep.configs:
        key = "rtt_p50_us" if cid == "ping" else ("connect_s" if cid.startswith("connect") else "msgs_per_s")
        for s in rep.servers:
            cells = [run_cell(cid, key, r) for r in rep.runs.get(cid, s)]
            w(f"| {cid} | {s} | " + " | ".join(cells) + " |")
    w("")
    return md


def commands_section(rep):
    env = rep.env
    md = []
    w = md.append
    w("## Commands")
    w("")
    w("Build: `cargo build --release --features relay-server --bin relay-server --example minimal_relay --example load`. "
      "Servers (PORT changes per run; each run starts a fresh server; MAX_CLIENTS is 32, the default "
      "of our relay server and of Godot's `create_server`, except 1024 for the connect tests):")
    w("")
    w("```sh")
    w(env["BENCH_CMD_OURS"])
    w(env["BENCH_CMD_MINIMAL"])
    w(env["BENCH_CMD_GODOT"])
    w("```")
    w("")
    w("Load generator, one line per configuration:")
    w("")
    w("```sh")
    for cid, desc, args, variant, max_clients in rep.configs:
        w(f"# {cid}: {desc}; servers: MAX_CLIENTS={max_clients}"
          + (", relay off (--no-relay / BENCH_RELAY=0)" if variant == "norelay" else ""))
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


SECTIONS = (intro_section, machine_section, throughput_section, ping_section, connect_section,
            overload_section, targets_section, notes_section, perf_section, criterion_section,
            every_run_section, commands_section)


def markdown(rep, kept=""):
    """BENCHMARKS.md: the report, then the kept section if there is one."""
    md = [line for section in SECTIONS for line in section(rep)]
    return "\n".join(md) + ("\n" + kept if kept else "")


# ---- the chart -----------------------------------------------------------------------------

def chart(rep):
    """BENCHMARKS.svg: a bar per server and configuration (throughput, then overload) of the
    median delivered messages per second."""
    runs, servers = rep.runs, rep.servers
    throughput, overload = rep.throughput, rep.overload
    chart_cfgs = throughput + overload
    W, H = 960, 470
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
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
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
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


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
