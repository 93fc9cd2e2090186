"""Tests of scripts/bench_report.py, the generator of BENCHMARKS.md and BENCHMARKS.svg.

Run from the repository root (standard library only, about a second):

    python3 -m unittest discover -s scripts -p 'test_*.py'

The fixture, scripts/testdata/bench/, is a small run in the format scripts/bench.sh and
examples/load.rs write: configs.txt is bench.sh's configuration list; results.jsonl has three
rounds of some configurations, none of others (bcast32_rel, excl32_rel, peer32_rel), no Godot
result for some, failed runs (null, and ok: false with an error), a connect run whose mesh did not
complete; perf reports, criterion estimates, a tests/relay_alloc.rs log, the head of a load.rs,
and a previous BENCHMARKS.md with an rpc-paths section.
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
        self.assertIn("| configuration | ours (relay_server) msg/s | minimal relay msg/s | Godot 3.2 msg/s "
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
                      "| n/a | n/a | n/a | n/a | n/a | n/a |", lines)
        self.assertIn("| peer32_rel | godot |  |", lines)

    def test_ping(self):
        lines = self.lines(self.generate()[0])
        self.assertIn("| ours (relay_server) | 16.5 | 18.1 | 28.0 | 17.2 | +2% |", lines)
        self.assertIn("| minimal relay | 16.1 | 16.9 | 32.0 | 16.6 | +0% |", lines)
        self.assertIn("| Godot 3.2 | 19.1 | 20.2 | 39.2 | 20.0 | +19% |", lines)

    def test_connect(self):
        lines = self.lines(self.generate()[0])
        # Mesh 5.0, never, 4.0: the run that did not finish counts as slowest, median 5.00.
        self.assertIn("| ours (relay_server) | on | 1.200 | 5.00 | 100.0% | 2 | 2,100,000 | 0 | 6,000 "
                      "| 26,000 | 20,480 |", lines)
        self.assertIn("| ours (relay_server) | off | 0.600 | - | n/a | 0 | 600,000 | 0 | 6,000 | 9,100 "
                      "| 3,174 |", lines)
        self.assertIn("| Godot 3.2 | on | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |", lines)

    def test_overload_and_targets(self):
        md, _ = self.generate()
        lines = self.lines(md)
        self.assertIn("| overload: 8 clients, 1 sender, unpaced 32 B reliable broadcast | ours (relay_server) "
                      "| 1,000,000 | 686,000 | 700,000 | 2.00 | 0 | 1 |", lines)
        self.assertIn("- Throughput at least 0.9x the minimal relay in every configuration: **holds** "
                      "(lowest ratio 0.95x in bcast8_unrel; all: bcast8_rel 1.00x, bcast8_unrel 0.95x;", md)
        self.assertIn("**holds** (ours 16.5 µs with default settings, minimal 16.1 µs busy-polling: +2%)", md)
        self.assertIn("in 2 of 3 runs within 30 s, at most 2 clients lost", md)
        self.assertIn("- Overload: our server disconnected **1** clients.", lines)
        self.assertIn("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; "
                      "finished in 0.12s", lines)

    def test_every_run(self):
        lines = self.lines(self.generate()[0])
        self.assertIn("| configuration | server | run 1 | run 2 | run 3 |", lines)
        self.assertIn("| bcast8_rel | godot | 2,000,000 msg/s (load CPU 99%) | failed "
                      "| 2,200,000 msg/s (load CPU 99%) |", lines)
        self.assertIn("| connect1000 | ours | 1.200 s, mesh 5.00, 0 lost | 1.000 s, mesh not within 30 s, "
                      "2 lost | 1.500 s, mesh 4.00, 0 lost |", lines)
        self.assertIn("| connect1000 | godot | failed: only 990 of 1000 clients connected within 30s |", lines)

    def test_perf_criterion_commands(self):
        md, _ = self.generate()
        lines = self.lines(md)
        self.assertIn("| | ours (relay_server) | minimal relay |", lines)
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
                      "SERVER_PID --label connect1000_norelay --time-limit 20 --test connect --clients 1000 "
                      "--connect-timeout 30 --no-mesh-wait", lines)
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
        # 5 throughput + 2 overload configurations, 3 servers.
        self.assertEqual(len(bars), 7 * 3)
        ours = bars["ours (relay_server) bcast8_rel: 4,000,000 msg/s"]
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
        self.assertIn("| ours (relay_server) | n/a | n/a | n/a | n/a | n/a |", lines)
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
        self.assertIn("| configuration | server | run 1 |", lines)
        self.assertEqual(len([r for r in ET.fromstring(svg).iter(SVG_NS + "rect")
                              if r.find(SVG_NS + "title") is not None]), 7 * 2)

    def test_only_godot(self):
        with open(os.path.join(FIXTURE, "results.jsonl"), encoding="utf-8") as f:
            godot = "".join(line for line in f if '"bench_server":"godot"' in line)
        md, svg = self.generate(env={"BENCH_SERVERS": "godot"}, results=godot)
        lines = self.lines(md)
        self.assertIn("| configuration | Godot 3.2 msg/s | ours / minimal | ours / Godot | loss % (godot) "
                      "| out of order |", lines)
        self.assertIn("| 8 clients, 1 sender, 32 B reliable broadcast | 2,100,000 | n/a | n/a | 0.00 | 4 |", lines)
        self.assertIn("| Godot 3.2 | 19.1 | 20.2 | 39.2 | 20.0 | n/a |", lines)
        self.assertIn("| connect1000 | godot | failed: only 990 of 1000 clients connected within 30s |", lines)
        for target in ("Throughput at least", "Round-trip p50 within", "1000 clients connect to one server"):
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
