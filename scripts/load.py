#!/usr/bin/env python3
"""Load benchmark of the gateway (a benchmark, not a test): oha against a local mock upstream,
directly and through the gateway, reporting requests/s, p50/p90/p99, added latency, the
gateway's CPU time per request (from /proc), its peak RSS and its time from start to first
answer. Everything runs on loopback and is bounded in time.

Each row starts with a second of unmeasured warm-up at its concurrency (connections opened on
both legs), then each figure is the median of --repeat runs (3 by default): on a machine whose cores the load
generator, the mock and the gateway share, one run's p99 moves by a millisecond or more.

The rows at a concurrency run closed-loop: each connection sends its next request as soon as
the last is answered, so the machine is saturated and latency there is mostly queueing (by
Little's law, concurrency / throughput). The "fixed rate" rows measure what the gateway adds
without that: 64 connections offered a fixed number of requests per second (a quarter and a
half of what the gateway served closed-loop at concurrency 64 on that route), the same rate
directly and through the gateway, with oha's correction for coordinated omission.

Usage: scripts/load [--seconds N] [--repeat N] [--quick] [--general 'durable_spend: true']
       (the wrapper builds the binary, profile dist; --bin runs another)
"""

import argparse
import json
import os
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import procs
from procs import free_port

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "dist", "switchyard")
KEY = "sk-load-test"
TICKS = os.sysconf("SC_CLK_TCK")
WORDS20 = " ".join(f"w{i}" for i in range(20))
WORDS200 = " ".join(f"w{i}" for i in range(200))


def wait_ready(url, timeout=10.0):
    procs.wait_ready(url, timeout, poll=0.005)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def oha(url, body, concurrency, seconds, headers, rate=None):
    cmd = ["oha", "-z", f"{seconds}s", "-c", str(concurrency), "--no-tui", "--output-format", "json", "-m", "POST",
           "-T", "application/json", "-d", body, url]
    if rate:
        cmd[1:1] = ["-q", str(rate), "--latency-correction"]
    for h in headers:
        cmd[1:1] = ["-H", h]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    summary = data["summary"]
    p = data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    ok = int(codes.get("200", 0))
    total = sum(int(v) for v in codes.values())
    return {
        "rps": summary["requestsPerSec"],
        "p50": p["p50"] * 1000,
        "p90": p["p90"] * 1000,
        "p99": p["p99"] * 1000,
        "ok": ok,
        "total": total,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; each figure is their median")
    parser.add_argument("--quick", action="store_true", help="concurrency 1 and 64 only, instant mock only, one run per row")
    parser.add_argument("--bin", default=BIN, help="the switchyard binary (default: the dist build)")
    parser.add_argument("--general", default="", help="general_settings for the gateway, as YAML flow (durable_spend: true)")
    args = parser.parse_args()
    binary = args.bin
    if args.quick:
        args.repeat = 1
    if not shutil.which("oha"):
        raise SystemExit("oha is needed: cargo install oha --locked")
    work = tempfile.mkdtemp()
    procs = []
    try:
        latencies = [0] if args.quick else [0, 50]
        rows = []
        for latency in latencies:
            mock_port, gw_port = free_port(), free_port()
            mock = subprocess.Popen([binary, "mock-upstream", "--port", str(mock_port), "--latency-ms", str(latency)],
                                    stderr=subprocess.DEVNULL)
            procs.append(mock)
            wait_ready(f"http://127.0.0.1:{mock_port}/v1/models")
            config = os.path.join(work, f"config-{latency}.yaml")
            with open(config, "w") as f:
                f.write("model_list:\n  - model_name: fast\n    litellm_params: "
                        f"{{model: openai/echo, api_base: 'http://127.0.0.1:{mock_port}/v1', api_key: sk-mock}}\n"
                        # Anthropic-format upstream (the mock's /v1/messages): /v1/messages passes through.
                        "  - model_name: native\n    litellm_params: "
                        f"{{model: anthropic/echo, api_base: 'http://127.0.0.1:{mock_port}', api_key: sk-mock}}\n")
                if args.general:
                    f.write(f"general_settings: {{{args.general}}}\n")
            env = dict(os.environ, SWITCHYARD_MASTER_KEY=KEY, SWITCHYARD_DATABASE_URL=f"sqlite://{work}/db-{latency}.db")
            started = time.monotonic()
            gw = subprocess.Popen([binary, "serve", "--config", config, "--port", str(gw_port)], env=env,
                                  stderr=subprocess.DEVNULL)
            procs.append(gw)
            wait_ready(f"http://127.0.0.1:{gw_port}/health/liveness")
            req = urllib.request.Request(f"http://127.0.0.1:{gw_port}/v1/chat/completions", method="POST",
                                         data=json.dumps({"model": "fast", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                                         headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
            urllib.request.urlopen(req).read()
            first_answer_ms = (time.monotonic() - started) * 1000
            auth = [f"Authorization: Bearer {KEY}"]
            messages = lambda stream, text: json.dumps(  # noqa: E731
                {"model": "native", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": text}]})
            scenarios = [
                ("anthropic pass-through", False, messages(False, "hello"), "/v1/messages"),
                ("anthropic pass-through", True, messages(True, WORDS20), "/v1/messages"),
                ("openai", False, json.dumps({"model": "fast", "messages": [{"role": "user", "content": "hello"}]}),
                 "/v1/chat/completions"),
                ("openai", True, json.dumps({"model": "fast", "stream": True, "messages": [{"role": "user", "content": WORDS20}]}),
                 "/v1/chat/completions"),
                ("anthropic", False, json.dumps({"model": "fast", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}),
                 "/v1/messages"),
                ("anthropic", True, json.dumps({"model": "fast", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": WORDS20}]}),
                 "/v1/messages"),
            ]
            if not args.quick:
                # Ten times the chunks: the CPU per chunk should not grow with the answer.
                scenarios.append(("openai", True, json.dumps({"model": "fast", "stream": True, "messages": [{"role": "user", "content": WORDS200}]}),
                                  "/v1/chat/completions"))
            for route, stream, body, path in scenarios:
                chunks = len(json.loads(body)["messages"][0]["content"].split()) if stream else 0
                # The direct leg: the mock's own route in the same format (its /v1/messages for
                # the pass-through rows), so "added" is what the gateway adds.
                passthrough = route == "anthropic pass-through"
                direct_path = "/v1/messages" if passthrough else "/v1/chat/completions"
                if route == "anthropic":
                    direct_body = json.dumps({"model": "echo", "stream": stream, "messages": json.loads(body)["messages"]})
                else:
                    direct_body = body.replace('"fast"', '"echo"').replace('"native"', '"echo"')
                loads = [(c, None) for c in ([1, 64] if args.quick else [1, 16, 64])]
                if latency == 0 and chunks <= 20:
                    loads += [(64, "quarter"), (64, "half")]
                saturated = None
                for c, share in loads:
                    rate = None
                    if share:
                        rate = max(1, int(saturated * (0.25 if share == "quarter" else 0.5)))
                    # A second of warm-up first (not measured): the connections at this
                    # concurrency are opened, on both legs, before the clock runs.
                    oha(f"http://127.0.0.1:{mock_port}{direct_path}", direct_body, c, 1, [], rate)
                    oha(f"http://127.0.0.1:{gw_port}{path}", body, c, 1, auth, rate)
                    runs = []
                    for _ in range(args.repeat):
                        direct = oha(f"http://127.0.0.1:{mock_port}{direct_path}", direct_body, c, args.seconds, [], rate)
                        cpu0 = cpu_seconds(gw.pid)
                        through = oha(f"http://127.0.0.1:{gw_port}{path}", body, c, args.seconds, auth, rate)
                        cpu = cpu_seconds(gw.pid) - cpu0
                        runs.append({
                            "direct_rps": direct["rps"], "rps": through["rps"],
                            "p50": through["p50"], "p90": through["p90"], "p99": through["p99"],
                            "added_p50": through["p50"] - direct["p50"], "added_p99": through["p99"] - direct["p99"],
                            "cpu_ms": cpu * 1000 / max(through["total"], 1),
                            "errors": through["total"] - through["ok"],
                        })
                    row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                    row["errors"] = sum(r["errors"] for r in runs)
                    row.update({"latency": latency, "route": route, "stream": stream, "chunks": chunks, "c": c, "rate": rate})
                    if c == 64 and not share:
                        saturated = row["rps"]
                    rows.append(row)
                    print(json.dumps(rows[-1]), file=sys.stderr)
            rows.append({"latency": latency, "peak_rss_mb": peak_rss_mb(gw.pid), "first_answer_ms": first_answer_ms})
            for p in (gw, mock):
                p.terminate()
                p.wait(timeout=10)
        print("| mock latency | route | stream | concurrency | direct req/s | gateway req/s | p50 / p90 / p99 ms | added p50 / p99 ms | gateway CPU per request | per chunk | errors |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            if "route" not in r:
                continue
            load = f"{r['c']} at {r['rate']} req/s" if r.get("rate") else str(r["c"])
            print(f"| {r['latency']} ms | {r['route']} | {str(r['chunks']) + ' chunks' if r['stream'] else 'no'} | {load} | "
                  f"{r['direct_rps']:.0f} | {r['rps']:.0f} | {r['p50']:.2f} / {r['p90']:.2f} / {r['p99']:.2f} | "
                  f"{r['added_p50']:.2f} / {r['added_p99']:.2f} | {r['cpu_ms']:.3f} ms | "
                  f"{(format(r['cpu_ms'] * 1000 / r['chunks'], '.1f') + ' µs') if r['stream'] else ''} | {r['errors']} |")
        for r in rows:
            if "peak_rss_mb" in r:
                print(f"\nmock latency {r['latency']} ms: gateway peak RSS {r['peak_rss_mb']:.1f} MB, "
                      f"start to first answer {r['first_answer_ms']:.0f} ms")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
