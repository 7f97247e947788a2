#!/usr/bin/env python3
"""Soak test of the gateway (a bounded run, not a benchmark): a mock upstream process and a
gateway process on loopback, and client threads sending a mix for --minutes (30 by default):
whole answers, streams, upstream errors (500s and 429s), calls cut before the answer, streams
cut midway, and calls of a key with a budget and a tpm, so that every path that holds or
releases something runs over and over.

It samples the gateway's RSS every 10 s, then stops it with SIGTERM and checks:
- RSS after warm-up (the first fifth of the run, at least 20 s) does not grow past 20% or
  16 MB, whichever is more;
- every answered call (its x-switchyard-call-id) has its spend row, every upstream error a
  failure row, and there are no more cancelled rows than cut calls;
- the budgeted key's period spend (its counter: reservations included) equals the sum of its
  spend rows: no reservation outlived its call.
It prints the figures (requests by kind, RSS start/middle/end, rows) and exits non-zero on any
failed check.

With --kill it stops the gateway with SIGKILL in the middle of the load instead, and
reports how many answered calls lost their spend row (the flush window's); with --durable
the gateway runs with `durable_spend: true`, where that must be none.

Usage: scripts/soak [--minutes N] [--clients N] [--kill] [--durable]   (the wrapper builds the binary)
"""

import argparse
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import procs
from procs import free_port

KEY = "sk-soak-master"


def wait_ready(url, timeout=15.0):
    procs.wait_ready(url, timeout, poll=0.02)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.call_ids = set()
        self.errors = []

    def add(self, kind, call_id=None):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if call_id:
                self.call_ids.add(call_id)

    def unexpected(self, what):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(what)
            self.counts["unexpected"] = self.counts.get("unexpected", 0) + 1


def body(model, stream=False, text="hello soak", **extra):
    payload = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    payload.update(extra)
    return json.dumps(payload)


def request(port, key, payload, tally, kind, expect, stream=False, cut=None):
    """One call; `cut` closes the connection early: "before" (after sending), "midway" (after
    the first bytes of a stream)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", payload,
                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        if cut == "before":
            time.sleep(random.uniform(0.01, 0.15))
            conn.sock.close()
            tally.add(kind)
            return
        response = conn.getresponse()
        if cut == "midway":
            response.read(64)
            conn.sock.close()
            tally.add(kind)
            return
        data = response.read()
        if response.status not in expect:
            tally.unexpected(f"{kind}: {response.status} {data[:200]!r}")
            return
        if response.status == 200 and stream and not data.rstrip().endswith(b"data: [DONE]"):
            tally.unexpected(f"{kind}: a stream without [DONE]: {data[-200:]!r}")
            return
        tally.add(kind, response.getheader("x-switchyard-call-id") if response.status == 200 else None)
    except (OSError, http.client.HTTPException) as err:
        tally.unexpected(f"{kind}: {err!r}")
    finally:
        conn.close()


def client(port, keys, deadline, tally, seed):
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.30:
            request(port, KEY, body("echo"), tally, "whole", {200})
        elif roll < 0.55:
            request(port, KEY, body("echo", stream=True, text="one two three four five six"), tally, "stream", {200},
                    stream=True)
        elif roll < 0.62:
            request(port, KEY, body("broken"), tally, "upstream_500", {500, 502})
        elif roll < 0.67:
            request(port, KEY, body("limited"), tally, "upstream_429", {429})
        elif roll < 0.75:
            request(port, KEY, body("slow"), tally, "cut_before", set(), cut="before")
        elif roll < 0.82:
            request(port, KEY, body("drip", stream=True, text="a b c d e f g h"), tally, "cut_midway", set(),
                    stream=True, cut="midway")
        else:
            # A key with a budget and a tpm, on a priced model: whole, streamed and cut calls.
            key, stream = keys["budgeted"], rng.random() < 0.5
            payload = body("priced", stream=stream, text="priced words " * rng.randint(1, 20), max_tokens=50)
            if rng.random() < 0.2:
                request(port, key, payload, tally, "budgeted_cut", set(), stream=stream, cut="before")
            else:
                request(port, key, payload, tally, "budgeted", {200, 429}, stream=stream)


def killed(gateway, database, tally, seconds, args):
    """SIGKILL mid-load: how many answered calls have no spend row."""
    time.sleep(seconds)
    with tally.lock:
        answered = set(tally.call_ids)
        total = sum(v for k, v in tally.counts.items() if k != "unexpected")
    gateway.kill()
    gateway.wait()
    db = sqlite3.connect(database)
    logged = {r[0] for r in db.execute("SELECT call_id FROM spend_logs")}
    lost = answered - logged
    rate = total / seconds
    mode = "durable_spend" if args.durable else "default flush window (250 ms)"
    print(f"\nSIGKILL after {seconds:.0f} s at {rate:.0f} calls/s ({mode}): {len(answered)} answered calls, "
          f"{len(lost)} without a spend row ({100 * len(lost) / max(1, len(answered)):.2f}%, "
          f"{1000 * len(lost) / max(1.0, rate):.0f} ms of calls)")
    if args.durable and lost:
        print("FAILED: durable mode lost rows of answered calls")
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--bin", default=os.environ.get("SWITCHYARD_BIN", "target/release/switchyard"))
    parser.add_argument("--kill", action="store_true", help="end with SIGKILL mid-load and report the rows lost")
    parser.add_argument("--durable", action="store_true", help="run the gateway with durable_spend: true")
    args = parser.parse_args()
    seconds = args.minutes * 60
    work = tempfile.mkdtemp(prefix="switchyard-soak-")
    upstream_port, port = free_port(), free_port()
    upstream = subprocess.Popen([args.bin, "mock-upstream", "--port", str(upstream_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{upstream_port}/v1"
    config = os.path.join(work, "config.yaml")
    with open(config, "w") as f:
        f.write(f"""model_list:
  - model_name: echo
    litellm_params: {{model: openai/echo, api_base: "{base}", api_key: sk-up}}
  - model_name: broken
    litellm_params: {{model: openai/error-500, api_base: "{base}", api_key: sk-up}}
  - model_name: limited
    litellm_params: {{model: openai/error-429, api_base: "{base}", api_key: sk-up}}
  - model_name: slow
    litellm_params: {{model: openai/slow-300, api_base: "{base}", api_key: sk-up}}
  - model_name: drip
    litellm_params: {{model: mock/drip-50}}
  - model_name: priced
    litellm_params: {{model: openai/slow-20, api_base: "{base}", api_key: sk-up}}
    model_info: {{base_model: gpt-4o-mini}}
router_settings: {{num_retries: 0, allowed_fails: 1000000}}
general_settings: {{durable_spend: {str(args.durable).lower()}}}
""")
    database = os.path.join(work, "switchyard.db")
    env = dict(os.environ, SWITCHYARD_MASTER_KEY=KEY, SWITCHYARD_DATABASE_URL=f"sqlite://{database}")
    env.pop("RUST_LOG", None)
    log = open(os.path.join(work, "gateway.log"), "w")
    gateway = subprocess.Popen([args.bin, "serve", "--config", config, "--port", str(port)], env=env,
                               stdout=log, stderr=log)
    try:
        wait_ready(f"http://127.0.0.1:{upstream_port}/v1/models")
        wait_ready(f"http://127.0.0.1:{port}/health/liveness")
        generate = urllib.request.Request(
            f"http://127.0.0.1:{port}/key/generate",
            data=json.dumps({"max_budget": 1000.0, "tpm_limit": 10_000_000, "max_parallel_requests": 4}).encode(),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        made = json.load(urllib.request.urlopen(generate))
        keys = {"budgeted": made["key"]}
        key_id = made["key_id"]
        tally = Tally()
        started = time.monotonic()
        deadline = started + seconds
        threads = [threading.Thread(target=client, args=(port, keys, deadline, tally, i), daemon=True)
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        samples = []
        if args.kill:
            return killed(gateway, database, tally, seconds, args)
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - started, rss_mb(gateway.pid)))
            print(f"  {samples[-1][0]:7.0f} s  RSS {samples[-1][1]:6.1f} MB  "
                  f"{sum(tally.counts.values())} calls", flush=True)
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
        for t in threads:
            t.join(timeout=60)
        # Calls cut by their clients end in the gateway a moment later.
        time.sleep(1.0)
        samples.append((time.monotonic() - started, rss_mb(gateway.pid)))
        info = urllib.request.Request(f"http://127.0.0.1:{port}/key/info?key_id={key_id}",
                                      headers={"Authorization": f"Bearer {KEY}"})
        counter_spend = json.load(urllib.request.urlopen(info))["info"]["spend"]
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=60)
    finally:
        for process in (gateway, upstream):
            if process.poll() is None:
                process.kill()
                process.wait()

    db = sqlite3.connect(database)
    rows = dict(db.execute("SELECT status, COUNT(*) FROM spend_logs GROUP BY status").fetchall())
    logged = {r[0] for r in db.execute("SELECT call_id FROM spend_logs")}
    key_rows = db.execute("SELECT COALESCE(SUM(cost_pico), 0) FROM spend_logs WHERE key_id = ?", (key_id,)).fetchone()[0]
    failures = []
    warm_until = max(20.0, seconds / 5)
    warm = [rss for at, rss in samples if at >= warm_until] or [samples[-1][1]]
    start_rss, end_rss = warm[0], samples[-1][1]
    middle_rss = samples[len(samples) // 2][1]
    if end_rss - start_rss > max(16.0, start_rss * 0.2):
        failures.append(f"RSS grew from {start_rss:.1f} MB after warm-up to {end_rss:.1f} MB")
    missing = tally.call_ids - logged
    if missing:
        failures.append(f"{len(missing)} answered calls have no spend row (e.g. {sorted(missing)[:3]})")
    errors = tally.counts.get("upstream_500", 0) + tally.counts.get("upstream_429", 0)
    if rows.get("failure", 0) < errors:
        failures.append(f"{errors} upstream errors but {rows.get('failure', 0)} failure rows")
    cuts = sum(tally.counts.get(k, 0) for k in ("cut_before", "cut_midway", "budgeted_cut"))
    if rows.get("cancelled", 0) > cuts:
        failures.append(f"{rows.get('cancelled', 0)} cancelled rows for {cuts} cut calls")
    if abs(counter_spend * 1e12 - key_rows) > 1000:
        failures.append(f"the budgeted key's counter says ${counter_spend} but its rows sum to ${key_rows / 1e12}: "
                        "a reservation outlived its call")
    if tally.counts.get("unexpected"):
        failures.append(f"{tally.counts['unexpected']} unexpected answers, e.g. {tally.errors[:3]}")
    total = sum(v for k, v in tally.counts.items() if k != "unexpected")
    print(f"\nsoak: {args.minutes:g} min, {args.clients} clients, {total} calls "
          f"({total / seconds:.0f}/s): " + ", ".join(f"{k} {v}" for k, v in sorted(tally.counts.items())))
    print(f"RSS: start {samples[0][1]:.1f} MB, after warm-up {start_rss:.1f} MB, middle {middle_rss:.1f} MB, "
          f"end {end_rss:.1f} MB")
    print("spend rows: " + ", ".join(f"{k} {v}" for k, v in sorted(rows.items()))
          + f"; answered calls without a row: {len(missing)}")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        print(f"(gateway log: {os.path.join(work, 'gateway.log')})")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
