"""Tests of scripts/bench_report.py, the generator of BENCHMARKS.md and BENCHMARKS.svg.

Run from the repository root (standard library only, about a second):

    python3 -m unittest discover -s scripts -p 'test_*.py'

The fixture, scripts/testdata/bench/, is a small run in the format scripts/bench.sh and
examples/load.rs write: configs.txt is bench.sh's configuration list; results.jsonl has three
rounds of some configurations, none of others (bcast32_rel, excl32_rel, peer32_rel, the storms of
100, 500 and 2000 clients), no Godot result for some, failed runs (null, and ok: false
with an error), join storms of 1000 and 4095 clients (one 4095 run of ours meshed, one lost
clients), idle runs of ours (the 4095 one failed), recovery runs of ours, ours always busy-polling and the minimal
relay; perf reports, criterion estimates, a tests/relay_alloc.rs log, the head of a load.rs, and
a previous BENCHMARKS.md with an rpc-paths and a bench_ws section.
"""
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_report  # noqa: E402

FIXTURE = os.path.join(HERE, "testdata", "bench")
SVG_NS = "{http://www.w3.org/2000/svg}"

ENV = {
    "BENCH_SERVERS": "ours minimal godot",
    "BENCH_REPS_USED": "3",
    "BENCH_QUICK_USED": "0",
    "BENCH_SKIPPED": "0",
    "BENCH_RUN_DATE": "2026-11-22 02:24 UTC",
    "BENCH_GIT": "f20c557",
    "BENCH_ELAPSED": "472",
    "BENCH_CPU_MODEL": "Intel(R) Xeon(R) Processor",
    "BENCH_NPROC": "2",
    "BENCH_KERNEL": "Linux 6.18.44",
    "BENCH_RUSTC": "rustc 1.95.0",
    "BENCH_GODOT_VERSION": "3.2.3.stable.custom_build",
    "BENCH_CMD_OURS": "taskset -c 0 target/release/relay-server --port PORT",
    "BENCH_CMD_MINIMAL": "taskset -c 0 target/release/examples/minimal_relay --port PORT",
    "BENCH_CMD_GODOT": "env BENCH_PORT=PORT godot3-server -s res://bench_server.gd",
    "BENCH_PIN_LOAD": "taskset -c 1",
    "BENCH_PROFILE_ARGS": "--test throughput --clients 32 --senders 4",
    "BENCH_CONNECT_PROFILE_ARGS": "--test connect --clients 1000 --connect-timeout 30",
}

KEPT = """<!-- rpc-paths:begin -->
## Broadcast RPCs from Godot clients: the relay confirms node paths

| server | packets in per broadcast RPC |
|---|---:|
| relay_server (answers SIMPLIFY_PATH) | 1.110 |

Before/after: **7.27×** the packets.
<!-- rpc-paths:end -->

<!-- bench_ws:begin -->
## WebSocket

| configuration | ours WS-only msg/s |
|---|---|
| 8 WS clients, all sending 64 B broadcasts, paced | 5,822,293 |
<!-- bench_ws:end -->
"""


class ReportTest(unittest.TestCase):
    """Runs the generator on copies of the fixture in a temporary directory."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bench_report_test.")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.raw = os.path.join(self.tmp, "raw")
        shutil.copytree(FIXTURE, self.raw)
        self.out = os.path.join(self.tmp, "out")
        os.mkdir(self.out)

    def generate(self, env=None, previous_md=True, results=None):
        """Writes the report into self.out and returns (markdown, svg). env: variables to change;
        previous_md: start from the fixture's BENCHMARKS.md (True), from none (False) or from this
        text; results: the text of results.jsonl instead of the fixture's."""
        if results is not None:
            with open(os.path.join(self.raw, "results.jsonl"), "w", encoding="utf-8") as f:
                f.write(results)
        md_path = os.path.join(self.out, "BENCHMARKS.md")
        if previous_md is True:
            shutil.copy(os.path.join(FIXTURE, "BENCHMARKS.md"), md_path)
        elif previous_md is False:
            if os.path.exists(md_path):
                os.remove(md_path)
        else:
            with open(md_path, "w", encoding="utf-8") as f:
                f.write(previous_md)
        raw = self.raw
        argv = [os.path.join(raw, "results.jsonl"), os.path.join(raw, "configs.txt"),
                os.path.join(raw, "criterion"), os.path.join(raw, "relay_alloc.log"),
                "--out-dir", self.out, "--load-rs", os.path.join(raw, "load.rs")]
        with contextlib.redirect_stdout(io.StringIO()) as stdout:
            self.assertEqual(bench_report.main(argv, env=dict(ENV, **(env or {}))), 0)
        self.assertEqual(stdout.getvalue(), "wrote BENCHMARKS.md and BENCHMARKS.svg\n")
        with open(md_path, encoding="utf-8") as f:
            md = f.read()
        with open(os.path.join(self.out, "BENCHMARKS.svg"), encoding="utf-8") as f:
            svg = f.read()
        return md, svg

    def lines(self, md):
        return md.split("\n")

    # ---- the tables

    def test_throughput_medians_and_paired_ratios(self):
        md, _ = self.generate()
        lines = self.lines(md)
        self.assertIn("| configuration | ours (relay-server) msg/s | minimal relay msg/s | Godot 3.2 msg/s "
                      "| ours / minimal | ours / Godot | loss % (ours / minimal / godot) | out of order |",
                      lines)
        # ours 4.0M, 3.0M, 4.4M; minimal 4.0M, 5.0M, 4.2M: medians 4.0M and 4.2M. The ratio is
        # the median of the per-round ratios (1.00, 0.60, 1.05), 1.00x, not 4.0 / 4.2 = 0.95x.
        # Godot: 2.0M, failed, 2.2M: median 2.1M, rounds 1 and 3 give 2.00x.
        self.assertIn("| 8 clients, 1 sender, 32 B reliable broadcast | 4,000,000 | 4,200,000 | 2,100,000 "
                      "| 1.00x | 2.00x | 0.00 / 0.00 / 0.00 | 0 / 0 / 4 |", lines)
        # No Godot run of this configuration at all.
        self.assertIn("| 8 clients, 1 sender, 32 B unreliable broadcast | 5,600,000 | 5,900,000 | n/a "
                      "| 0.95x | n/a | 0.50 / 0.00 / n/a | 0 / 0 / n/a |", lines)
        self.assertIn("MB/s (medians): bcast8_rel: ours 160.0, minimal 168.0, godot 84.0; "
                      "bcast8_unrel: ours 224.0, minimal 236.0, godot n/a; bcast32_rel: ours n/a, "
                      "minimal n/a, godot n/a; excl32_rel: ours n/a, minimal n/a, godot n/a; "
                      "peer32_rel: ours n/a, minimal n/a, godot n/a.", lines)

    def test_configurations_without_results_are_reported(self):
        md, _ = self.generate()
        lines = self.lines(md)
        for desc in ("32 clients, 4 senders, 32 B reliable broadcast",
                     "32 clients, 16 senders, 32 B reliable, one peer each (next id)"):
            self.assertIn(f"| {desc} | n/a | n/a | n/a | n/a | n/a | n/a / n/a / n/a | n/a / n/a / n/a |", lines)
        self.assertIn("| overload: 8 clients, 1 sender, unpaced 32 B reliable broadcast | Godot 3.2 "
                      "| 0 | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |", lines)
        self.assertIn("| peer32_rel | godot |  |", lines)

    def test_ping(self):
        lines = self.lines(self.generate()[0])
        self.assertIn("| ours (relay-server) | 16.5 | 18.1 | 28.0 | 17.2 | +2% |", lines)
        self.assertIn("| minimal relay | 16.1 | 16.9 | 32.0 | 16.6 | +0% |", lines)
        self.assertIn("| Godot 3.2 | 19.1 | 20.2 | 39.2 | 20.0 | +19% |", lines)

    def test_storms(self):
        lines = self.lines(self.generate()[0])
        self.assertIn("| clients | server | meshed | mesh (s) | connected (s) | ADD_PEER | lost | drops "
                      "| RSS before | RSS storm | RSS peak | RSS left | leave (s) | left behind |", lines)
        # Mesh 1.5, 2.5, 1.0 s: median 1.50; RSS in MB.
        self.assertIn("| 1000 | ours (relay-server) | 3 of 3 | 1.50 | 0.050 | 100.0% | 0 | 100 | 4.9 | 175.8 "
                      "| 176.8 | 9.3 | 0.5 | 0 |", lines)
        self.assertIn("| 1000 | minimal relay | 0 of 1 | no mesh | 0.050 | 99.5% | 21 | 450,000 | 2.9 | 95.7 "
                      "| 95.7 | 95.7 | 10.0 | 0 |", lines)
        # One run meshed, one did not: the one that did not counts as slowest.
        self.assertIn("| 4095 | ours (relay-server) | 1 of 2 | no mesh | 0.050 | 75.0% | 3 | 100 | 6.8 | 2783.2 "
                      "| 2832.0 | 24.4 | 0.5 | 0 |", lines)
        self.assertIn("| 4095 | Godot 3.2 | 0 of 1 | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |", lines)
        # Sizes without any run have no rows.
        self.assertFalse([line for line in lines if line.startswith("| 500 |")])

    def test_idle_and_recovery(self):
        lines = self.lines(self.generate()[0])
        self.assertIn("| 100 | 0.60 (0.50–0.70) | 30.5 | 90.0 | 0 | 5.9 |", lines)
        self.assertIn("| 1000 | 3.00 (2.00–4.00) | 30.5 | 90.0 | 0 | 5.9 |", lines)
        self.assertIn("| ours (relay-server) | 6.50 | 5.50–8.00 | 5.0 | 1.50 | 3.00 | 0 |", lines)
        self.assertIn("| ours, always busy-polling | 5.15 | 4.60–6.20 | 5.0 | 0.15 | 1.20 | 0 |", lines)
        self.assertIn("| minimal relay | 5.00 | 4.50–6.00 | 5.0 | 0.00 | 1.00 | 0 |", lines)

    def test_overload_spread(self):
        lines = self.lines(self.generate()[0])
        # 2.8M, 3.0M, 3.4M: median 3.0M, quartiles (inclusive) 2.9M and 3.2M.
        self.assertIn("| overload: 8 clients, 4 senders, unpaced 32 B unreliable broadcast | ours (relay-server) | 3 "
                      "| 3,000,000 | 2,800,000–3,400,000 | 2,900,000–3,200,000 | 280,000 | 1,400,000 | 80.00 "
                      "| 7,000 | 0 |", lines)
        self.assertIn("| overload: 8 clients, 1 sender, unpaced 32 B reliable broadcast | ours (relay-server) | 3 "
                      "| 1,000,000 | 900,000–1,100,000 | 950,000–1,050,000 | 686,000 | 700,000 | 2.00 | 0 | 1 |", lines)
        self.assertIn("Ours / minimal relay, median of the per-round ratios: overload_unrel 0.94x.", lines)

    def test_targets(self):
        md, _ = self.generate()
        lines = self.lines(md)
        self.assertIn("- A 4095-client join storm meshes with no client lost, in every run: **MISSED** (ours meshed "
                      "1 of 2 runs; misses by 1 of 2 runs: ADD_PEER received 50.0–100.0%, 0–3 clients lost per run; "
                      "same storm: minimal relay meshed 0 of 1, ADD_PEER 10.4% (median), at most 3,045 lost; "
                      "Godot 3.2 meshed 0 of 1 (no run completed)).", lines)
        self.assertIn("- A 1000-client mesh within 2 s: **MISSED** (ours: 1.50 s, 2.50 s, 1.00 s; the slowest run is "
                      "1.25x the target).", lines)
        self.assertIn("- RSS after a 1000-client storm in which everyone then leaves at most 2x the RSS before: "
                      "**MISSED** (ours 1.80x, 2.20x, 1.90x: 5,000 kB before, 180,000 kB one second after the storm, "
                      "9,500 kB after everyone left (medians); misses by 1.10x; minimal relay 32.67x, "
                      "Godot 3.2 2.00x).", lines)
        self.assertIn("- Throughput at least 0.95x the minimal relay on every paced configuration: **MISSED** "
                      "(lowest 0.949x in bcast8_unrel, 0.1% short; all: bcast8_rel 1.00x, bcast8_unrel 0.95x).", lines)
        self.assertIn("- Throughput at least 1.5x Godot on the broadcast configurations: **holds** (lowest 2.00x in "
                      "bcast8_rel; all: bcast8_rel 2.00x).", lines)
        self.assertIn("- Round-trip p50 within 10% of the busy-polling minimal relay: **holds** (ours 16.5 µs with "
                      "default settings, minimal 16.1 µs (medians); per round ours is +2% (median)).", lines)
        self.assertIn("- Idle CPU with 1000 idle connected clients at most 3% of a core: **MISSED** (ours 2.00%, "
                      "4.00%; 1.3x the limit).", lines)
        self.assertIn("- Idle CPU with 100 idle connected clients under 1% of a core: **holds** (ours 0.50%, 0.70%).",
                      lines)
        self.assertIn("- A lost reliable packet resent within 5 ms of ENet's deadline with default poll settings: "
                      "**holds** (ours: the resend came +1.50 ms after the RTO estimate (median of the runs' medians), "
                      "at worst +3.00 ms; gap ours / always-busy-polling ours 1.26x, ours / minimal 1.30x, "
                      "per round).", lines)
        self.assertIn("- (Reported, no target) 4095 idle connected clients: not measured, ours never had them "
                      "all connected and announced (1 of 1 runs: only 1095 of 4095 clients connected within "
                      "60s).", lines)
        self.assertIn("- Overload: our server disconnected **1** clients.", lines)
        self.assertIn("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; "
                      "finished in 0.12s", lines)
        # The fixture's bcast8_rel run 2 of ours had 61% of the load's core.
        self.assertIn("**In 1 of 24 runs that measured it, the load generator got less than 90% of its core "
                      "(see *Every run*): the machine was busy with other work then, and those runs' rates "
                      "are low.**", lines)
        # The targets come right after the machine.
        self.assertLess(md.index("## Targets"), md.index("## Throughput"))

    def test_every_run(self):
        lines = self.lines(self.generate()[0])
        self.assertIn("| configuration | server | run 1 | run 2 | run 3 |", lines)
        self.assertIn("| bcast8_rel | godot | 2,000,000 msg/s (load CPU 99%) | failed "
                      "| 2,200,000 msg/s (load CPU 99%) |", lines)
        self.assertIn("| storm4095 | ours | mesh 10.00 s, 0 lost, RSS 7,000/2,900,000/20,000 kB "
                      "| no mesh (50.0% ADD_PEER), 3 lost, RSS 7,000/2,900,000/30,000 kB |", lines)
        self.assertIn("| storm4095 | godot | failed |", lines)
        self.assertIn("| idle1000 | ours | CPU 2.00%, ping p50 30.0 µs | CPU 4.00%, ping p50 31.0 µs |", lines)
        self.assertIn("| recovery | ours_busy | resend p50 5.10 ms (RTO est. 5.0 ms) | resend p50 5.20 ms "
                      "(RTO est. 5.0 ms) |", lines)
        # Idle runs are ours alone: no empty rows for the other servers.
        self.assertNotIn("| idle1000 | minimal |  |", lines)

    def test_perf_criterion_commands(self):
        md, _ = self.generate()
        lines = self.lines(md)
        self.assertIn("| | ours (relay-server) | minimal relay |", lines)
        self.assertIn("| Rust (src/, enet-wrapper, std) | 5.0% | 3.0% |", lines)
        self.assertIn("| other | 1.2% | 0.0% |", lines)
        self.assertIn("| 4.50% | `enet_wrapper::host::Host::send_many` |", lines)
        self.assertNotIn("PeerQueues", md)  # 0.04%: below the threshold
        self.assertIn("| 45.4% | relay_server | `enet_protocol_send_outgoing_commands` |", lines)
        # Numeric parts sort as numbers; base/ estimates are not the last run's.
        crit = [line for line in lines if line.startswith("| `")]
        self.assertEqual(crit, ["| `loopback/round_trip/flush_every_send` | 9.30 µs |",
                                "| `protocol/header/decode` | 1.7 ns |",
                                "| `relay/route/broadcast/8` | 19.4 ns |",
                                "| `relay/route/broadcast/32` | 61.2 ns |",
                                "| `relay/route/broadcast/1024` | 1.83 µs |",
                                "| `slow/startup` | 2.50 ms |"])
        self.assertIn("taskset -c 1 target/release/examples/load --server 127.0.0.1:PORT --server-pid "
                      "SERVER_PID --label storm4095 --time-limit 20 --test connect --clients 4095 "
                      "--connect-timeout 60 --leave --after-leave 3 --leave-timeout 10", lines)
        self.assertIn("# recovery: 2 clients; a reliable packet relayed to a quiet client, its first datagram dropped "
                      "there: time to the resend (20 per run); servers: MAX_CLIENTS=32; run against: ours ours_busy "
                      "minimal godot", lines)
        self.assertIn("```text\ncargo run --release --example load -- [OPTIONS]\n\n"
                      "  --server ADDR:PORT      server to load (default 127.0.0.1:7777)\n"
                      "  --test KIND             throughput (default) | overload | ping | connect\n```", md)

    # ---- the chart

    def test_chart_is_valid_svg_with_a_bar_per_configuration_and_server(self):
        _, svg = self.generate()
        root = ET.fromstring(svg)
        self.assertEqual(root.tag, SVG_NS + "svg")
        bars = {r.find(SVG_NS + "title").text: r for r in root.iter(SVG_NS + "rect")
                if r.find(SVG_NS + "title") is not None}
        # 5 throughput + 2 overload configurations, 3 servers; then 2 storm sizes, 3 servers.
        self.assertEqual(len([t for t in bars if "storm" not in t]), 7 * 3)
        self.assertEqual(len([t for t in bars if "storm" in t]), 2 * 3)
        storm = bars["ours (relay-server) storm4095: 75.0% ADD_PEER, meshed 1 of 2"]
        full = bars["ours (relay-server) storm1000: 100.0% ADD_PEER, meshed 3 of 3"]
        self.assertAlmostEqual(float(storm.get("height")) / float(full.get("height")), 0.75, places=2)
        self.assertIn("Godot 3.2 storm4095: 0.0% ADD_PEER, meshed 0 of 1", bars)
        ours = bars["ours (relay-server) bcast8_rel: 4,000,000 msg/s"]
        minimal = bars["minimal relay bcast8_rel: 4,200,000 msg/s"]
        self.assertAlmostEqual(float(ours.get("height")) / float(minimal.get("height")), 4.0 / 4.2, places=2)
        self.assertEqual(float(bars["Godot 3.2 peer32_rel: 0 msg/s"].get("height")), 0.0)
        labels = [t.text for t in root.iter(SVG_NS + "text")]
        self.assertIn("6M", labels)  # the top of the axis: the largest bar is 6.0M
        self.assertIn("unpaced overload (not a throughput test)", labels)

    # ---- BENCHMARKS.md's kept section

    def test_kept_section_survives(self):
        md, _ = self.generate()
        self.assertTrue(md.endswith("![delivered messages per second](BENCHMARKS.svg)\n\n" + KEPT), md[-600:])
        self.assertEqual(md.count("<!-- rpc-paths:begin -->"), 1)
        self.assertEqual(md.count("<!-- bench_ws:begin -->"), 1)
        self.assertNotIn("An old report", md)
        self.assertNotIn("Trailing text after the section", md)
        self.assertNotIn("More trailing text", md)
        # Rewriting the report again changes nothing.
        again, _ = self.generate(previous_md=md)
        self.assertEqual(again, md)

    def test_without_a_previous_report_or_its_end_marker(self):
        md, _ = self.generate(previous_md=False)
        self.assertTrue(md.endswith("![delivered messages per second](BENCHMARKS.svg)\n"))
        self.assertNotIn("rpc-paths", md)
        # A begin marker without an end marker: there is no section to keep.
        md, _ = self.generate(previous_md="<!-- rpc-paths:begin -->\n## half a section\n")
        self.assertNotIn("rpc-paths", md)
        # Only the WebSocket section: it is kept alone.
        ws_only = KEPT[KEPT.index("<!-- bench_ws:begin -->"):]
        md, _ = self.generate(previous_md="# old\n\n" + ws_only)
        self.assertTrue(md.endswith("![delivered messages per second](BENCHMARKS.svg)\n\n" + ws_only), md[-400:])
        self.assertNotIn("rpc-paths", md)

    # ---- missing data

    def test_nothing_ran(self):
        for name in ("perf-ours.txt", "perf-minimal.txt", "perf-connect-ours.txt", "relay_alloc.log"):
            os.remove(os.path.join(self.raw, name))
        shutil.rmtree(os.path.join(self.raw, "criterion"))
        md, svg = self.generate(results="")
        lines = self.lines(md)
        self.assertIn("| 8 clients, 1 sender, 32 B reliable broadcast | n/a | n/a | n/a | n/a | n/a "
                      "| n/a / n/a / n/a | n/a / n/a / n/a |", lines)
        self.assertIn("| ours (relay-server) | n/a | n/a | n/a | n/a | n/a |", lines)
        self.assertIn("(criterion was skipped)", lines)
        self.assertIn("(no output: the test did not run)", lines)
        self.assertIn("- Overload: our server disconnected **0** clients.", lines)
        self.assertNotIn("Throughput at least", md)
        self.assertNotIn("## Where the server's CPU time goes (perf)", md)
        ET.fromstring(svg)

    def test_only_some_servers(self):
        env = {"BENCH_SERVERS": "ours minimal", "BENCH_QUICK_USED": "1", "BENCH_SKIPPED": "7",
               "BENCH_REPS_USED": "1"}
        md, svg = self.generate(env=env)
        lines = self.lines(md)
        self.assertIn("**Quick mode (BENCH_QUICK=1): a tenth of the packets and one repetition. Not a real "
                      "measurement.**", lines)
        self.assertIn("**7 runs were skipped: the time budget (BENCH_BUDGET_S) ran out.**", lines)
        self.assertIn("| 8 clients, 1 sender, 32 B reliable broadcast | 4,000,000 | 4,200,000 | 1.00x "
                      "| 0.00 / 0.00 | 0 / 0 |", lines)
        self.assertNotIn("Godot 3.2 |", md)
        self.assertIn("| configuration | server | run 1 | run 2 | run 3 |", lines)
        self.assertNotIn("| storm1000 | godot |", md)
        self.assertEqual(len([r for r in ET.fromstring(svg).iter(SVG_NS + "rect")
                              if r.find(SVG_NS + "title") is not None]), 7 * 2 + 2 * 2)

    def test_only_godot(self):
        with open(os.path.join(FIXTURE, "results.jsonl"), encoding="utf-8") as f:
            godot = "".join(line for line in f if '"bench_server":"godot"' in line)
        md, svg = self.generate(env={"BENCH_SERVERS": "godot"}, results=godot)
        lines = self.lines(md)
        self.assertIn("| configuration | Godot 3.2 msg/s | ours / minimal | ours / Godot | loss % (godot) "
                      "| out of order |", lines)
        self.assertIn("| 8 clients, 1 sender, 32 B reliable broadcast | 2,100,000 | n/a | n/a | 0.00 | 4 |", lines)
        self.assertIn("| Godot 3.2 | 19.1 | 20.2 | 39.2 | 20.0 | n/a |", lines)
        self.assertIn("| storm4095 | godot | failed |", lines)
        for target in ("Throughput at least 0.95x", "Round-trip p50 within", "A 4095-client join storm",
                       "A 1000-client mesh", "Idle CPU", "A lost reliable packet"):
            self.assertNotIn(target, md)
        ET.fromstring(svg)

    # ---- as scripts/bench.sh runs it

    def test_command_line_as_bench_sh_runs_it(self):
        # From the repository root: examples/load.rs and BENCHMARKS.md in the current directory.
        os.makedirs(os.path.join(self.out, "examples"))
        shutil.copy(os.path.join(FIXTURE, "load.rs"), os.path.join(self.out, "examples", "load.rs"))
        shutil.copy(os.path.join(FIXTURE, "BENCHMARKS.md"), self.out)
        raw = self.raw
        proc = subprocess.run(
            [sys.executable, os.path.join(HERE, "bench_report.py"), os.path.join(raw, "results.jsonl"),
             os.path.join(raw, "configs.txt"), os.path.join(raw, "criterion"), os.path.join(raw, "relay_alloc.log")],
            cwd=self.out, env=dict(os.environ, **ENV), capture_output=True, text=True, check=False)
        self.assertEqual((proc.returncode, proc.stdout, proc.stderr),
                         (0, "wrote BENCHMARKS.md and BENCHMARKS.svg\n", ""))
        with open(os.path.join(self.out, "BENCHMARKS.md"), encoding="utf-8") as f:
            from_cli = f.read()
        with open(os.path.join(self.out, "BENCHMARKS.svg"), encoding="utf-8") as f:
            svg_from_cli = f.read()
        self.assertEqual((from_cli, svg_from_cli), self.generate())

    def test_usage_of_the_real_load_generator(self):
        load_rs = os.path.join(HERE, "..", "examples", "load.rs")
        if not os.path.exists(load_rs):
            self.skipTest("no examples/load.rs")
        usage = bench_report.read_usage(load_rs)
        self.assertTrue(usage and usage[0].startswith("cargo run --release --example load"), usage[:3])
        self.assertTrue(any(line.strip().startswith("--server ") for line in usage), usage)


class HelpersTest(unittest.TestCase):
    def test_paired_pairs_runs_of_the_same_round(self):
        def ok(v):
            return {"ok": True, "msgs_per_s": v}

        runs = bench_report.Runs({("c", "a"): [ok(10), None, ok(30)], ("c", "b"): [ok(5), ok(7), ok(10)]})
        self.assertEqual(runs.med("c", "a", "msgs_per_s"), 20)
        self.assertEqual(runs.paired("c", "a", "b"), 2.5)  # rounds 1 and 3: 2.0 and 3.0
        self.assertIsNone(runs.paired("c", "a", "missing"))

    def test_formats(self):
        self.assertEqual(bench_report.fmt(1234567.4), "1,234,567")
        self.assertEqual(bench_report.fmt(1.23456, 3, " s"), "1.235 s")
        self.assertEqual(bench_report.fmt(None), "n/a")
        self.assertEqual(bench_report.fmt_mesh(float("inf")), "not within 30 s")
        self.assertEqual(bench_report.ns(999.94), "999.9 ns")
        self.assertEqual(bench_report.ns(1500), "1.50 µs")


if __name__ == "__main__":
    unittest.main()
