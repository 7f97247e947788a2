"""Coding agents and the Anthropic TypeScript SDK through a gateway process: the real Claude
Code CLI to an Anthropic-format and to an OpenAI-format upstream, then the SDK
(tests/e2e/anthropic_sdk.cjs) on those routes and on the built-in mock.

Run by scripts/e2e with SWITCHYARD (the gateway binary), CLAUDE (the `claude` binary), NODE_PATH
(the npm packages), SDK_VERSION and RESULTS (a JSON-lines file the client matrix is made from)
in the environment. It starts the
scripted upstream and a recording tap (tests/e2e/agent_upstream.py) and a gateway whose
config sends every `claude-*` name Claude Code asks for to an Anthropic deployment, and
every `claude-opus-*` name to an OpenAI one (the most specific pattern wins). Claude Code
maps some names it is given to newer ones before it sends them, so the routes are patterns. Claude Code runs in print mode with a throwaway HOME
and no non-essential traffic: a plain turn, and a turn where the upstream asks for `Read`
of a file made here, Claude Code runs it and sends the result back. Checked: what Claude
Code printed, and what the upstream received (on the pass-through route the body byte for
byte but the model, the client's version and betas, our credentials and not the client's).

With RECORD set to a directory, the requests Claude Code sent are written there as recorded
ingress cases (tests/ingress.rs replays them without the CLI).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SWITCHYARD = os.environ["SWITCHYARD"]
CLAUDE = os.environ["CLAUDE"]
RESULTS = os.environ["RESULTS"]
RECORD = os.environ.get("RECORD")
VERSION = subprocess.run([CLAUDE, "--version"], capture_output=True, text=True, check=True).stdout.split()[0]
KEY = "sk-e2e-claude-code-key"
MARKER = "SWITCHYARD-E2E-NOTE-42"
UPSTREAM_MODEL = "claude-sonnet-4-5-20250929"
# A stand-in for the throwaway directory in recorded cases, so they do not change per run.
PROJECT = "/e2e/project"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url):
    for _ in range(200):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Rig:
    def __init__(self, work):
        self.work = work
        self.up_port, self.gw_port, self.tap_port = free_port(), free_port(), free_port()
        self.up_log, self.client_log = f"{work}/upstream.jsonl", f"{work}/client.jsonl"
        config = f"""model_list:
  - model_name: "claude-*"
    litellm_params: {{model: anthropic/{UPSTREAM_MODEL}, api_base: "http://127.0.0.1:{self.up_port}", api_key: sk-ant-upstream}}
  - model_name: "claude-opus-*"
    litellm_params: {{model: openai/gpt-4o, api_base: "http://127.0.0.1:{self.up_port}/v1", api_key: sk-oa-upstream}}
  - model_name: echo
    litellm_params: {{model: mock/echo}}
  - model_name: tools
    litellm_params: {{model: mock/tools}}
"""
        with open(f"{work}/config.yaml", "w", encoding="utf-8") as f:
            f.write(config)
        script = os.path.join(HERE, "agent_upstream.py")
        env = dict(os.environ, SWITCHYARD_MASTER_KEY=KEY, SWITCHYARD_DATABASE_URL=f"sqlite://{work}/gateway.db")
        self.gateway_log = open(f"{work}/gateway.log", "w", encoding="utf-8")
        self.procs = [
            subprocess.Popen([sys.executable, script, "upstream", str(self.up_port), self.up_log]),
            subprocess.Popen(
                [SWITCHYARD, "serve", "--config", f"{work}/config.yaml", "--port", str(self.gw_port)],
                env=env, stdout=self.gateway_log, stderr=subprocess.STDOUT,
            ),
            subprocess.Popen([sys.executable, script, "tap", str(self.tap_port),
                              f"http://127.0.0.1:{self.gw_port}", self.client_log]),
        ]
        wait_for(f"http://127.0.0.1:{self.gw_port}/health/liveness")
        wait_for(f"http://127.0.0.1:{self.tap_port}/health/liveness")

    def close(self):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)
        self.gateway_log.close()

    def claude(self, prompt, model, project):
        """Claude Code's JSON result, and the requests it sent and the upstream received."""
        for log in (self.up_log, self.client_log):
            open(log, "w", encoding="utf-8").close()
        home = tempfile.mkdtemp(dir=self.work)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": home,
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{self.tap_port}",
            "ANTHROPIC_AUTH_TOKEN": KEY,
            "ANTHROPIC_MODEL": model,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
            "ANTHROPIC_SMALL_FAST_MODEL": model,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
        }
        done = subprocess.run(
            [CLAUDE, "-p", prompt, "--output-format", "json", "--allowedTools", "Read"],
            cwd=project, env=env, capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, f"claude exited {done.returncode}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
        result = json.loads(done.stdout)
        return result, read_log(self.client_log), read_log(self.up_log)


def messages_calls(log):
    return [r for r in log if r["method"] == "POST" and r["path"] == "/v1/messages"]


def check_passthrough(sent, received):
    """The pass-through route: each request went on byte for byte but the model."""
    assert len(sent) == len(received), (len(sent), len(received))
    for client, upstream in zip(sent, received):
        body = json.loads(client["body"])
        model = json.dumps(body["model"])
        assert upstream["path"] == "/v1/messages", upstream["path"]
        assert upstream["query"] == client["query"], (upstream["query"], client["query"])
        expected = client["body"].replace(f'"model":{model}', f'"model":"{UPSTREAM_MODEL}"', 1)
        assert upstream["body"] == expected, "the body reached the upstream changed beyond its model"
        headers = upstream["headers"]
        assert headers.get("anthropic-beta") == client["headers"].get("anthropic-beta"), headers
        assert headers.get("anthropic-version") == client["headers"].get("anthropic-version"), headers
        assert headers.get("x-api-key") == "sk-ant-upstream", headers
        assert "authorization" not in headers, "the gateway key went upstream"


def check_translated(sent, received):
    """The OpenAI-format route: each request was translated, tools and system prompt kept."""
    assert len(sent) == len(received), (len(sent), len(received))
    for client, upstream in zip(sent, received):
        body, out = json.loads(client["body"]), json.loads(upstream["body"])
        assert upstream["path"] == "/v1/chat/completions", (upstream["path"], body["model"])
        assert upstream["headers"].get("authorization") == "Bearer sk-oa-upstream", upstream["headers"]
        assert out["model"] == "gpt-4o", out["model"]
        assert len(out.get("tools", [])) == len(body.get("tools", [])), "every tool was translated"
        assert out["messages"][0]["role"] == "system", out["messages"][0]


def record(name, request, project):
    """One recorded ingress case: what Claude Code sent, the throwaway paths made stable."""
    case = os.path.join(RECORD, name)
    os.makedirs(case, exist_ok=True)
    headers = {k: v for k, v in request["headers"].items() if k.startswith("anthropic-") or k == "content-type"}
    body = request["body"].replace(project, PROJECT)
    body = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(case, "request.json"), "w", encoding="utf-8") as f:
        json.dump({"client": f"Claude Code {VERSION}", "path": request["path"], "query": request["query"],
                   "headers": headers, "body": body}, f, indent=1, ensure_ascii=False)
        f.write("\n")


ROUTES = [
    ("anthropic", "claude-sonnet-4-5", "/v1/messages → Anthropic (pass-through)", check_passthrough),
    ("openai", "claude-opus-4-5", "/v1/messages → OpenAI format (translated)", check_translated),
]


def main():
    work = tempfile.mkdtemp(prefix="switchyard-claude-code-")
    project = os.path.join(work, "project")
    os.makedirs(project)
    note = os.path.join(project, "note.txt")
    with open(note, "w", encoding="utf-8") as f:
        f.write(f"{MARKER}\n")
    rig = Rig(work)
    failed = 0
    results = []
    try:
        for route_id, model, route, check_upstream in ROUTES:
            for turn, prompt, expected in [
                ("plain turn", "Say pong.", "pong from the agent upstream"),
                ("Read tool turn", f"What does the file say? READ_FILE:{note}", f"The file says {MARKER}."),
            ]:
                try:
                    result, sent, received = rig.claude(prompt, model, project)
                    assert result.get("is_error") is False, result
                    assert result.get("result") == expected, result.get("result")
                    sent, received_calls = messages_calls(sent), [r for r in received if r["method"] == "POST"]
                    if turn == "Read tool turn":
                        assert result.get("num_turns") == 2, result.get("num_turns")
                        assert len(sent) >= 2, "the tool's result went back"
                    check_upstream(sent, received_calls)
                    # The pass-through route's requests are the client's own, byte for byte.
                    if RECORD and route_id == "anthropic":
                        slug = "plain" if turn == "plain turn" else "read_tool"
                        for i, request in enumerate(sent):
                            record(f"claude_code_{slug}_{i + 1}", request, project)
                    print(f"ok      Claude Code {VERSION}: {route}: {turn}")
                    ok = True
                except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
                    failed += 1
                    ok = False
                    print(f"FAILED  Claude Code {VERSION}: {route}: {turn}: {e}")
                results.append({"client": f"Claude Code {VERSION}", "route": route, "check": turn, "ok": ok})
        sdk = subprocess.run(
            ["node", os.path.join(HERE, "anthropic_sdk.cjs")],
            env=dict(os.environ, GATEWAY=f"http://127.0.0.1:{rig.gw_port}", KEY=KEY),
            capture_output=True, text=True, timeout=180,
        )
        print(sdk.stdout, end="")
        if sdk.returncode != 0:
            failed += 1
            print(sdk.stderr[-3000:], file=sys.stderr)
    finally:
        rig.close()
        with open(RESULTS, "a", encoding="utf-8") as f:
            for r in results:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        if failed:
            with open(f"{work}/gateway.log", encoding="utf-8") as f:
                print("--- gateway log", f.read()[-5000:], sep="\n", file=sys.stderr)
    print(f"agents: {failed} failed (Claude Code {VERSION}: {len(results)} checks; the TS SDK as above)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
