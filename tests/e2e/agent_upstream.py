"""A scripted upstream for coding agents, and a recording tap in front of the gateway.

`upstream PORT LOG`: answers Anthropic's `POST /v1/messages` (whole or streamed, with
`count_tokens`) and OpenAI's `POST /v1/chat/completions` (whole or streamed), and appends
every request it receives (path, query, headers, body) to LOG as JSON lines. The script:
a request whose tools include `Read` and whose last user turn names a file with
`READ_FILE:<path>` is answered with a `Read` tool call for that path; a turn carrying the
tool's result is answered with the result's marker line; anything else gets a short text.

`tap PORT TARGET LOG`: forwards every request to TARGET (the gateway) as it came, streams
the answer back as it comes, and records the request as the upstream does: what the client
really sent, for the recorded ingress cases and for comparing with what the upstream got.
"""

import http.client
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOCK = threading.Lock()
MARKER = re.compile(r"SWITCHYARD-E2E-[A-Z0-9-]+")
READ = re.compile(r"READ_FILE:(\S+)")


def record(log, handler, body):
    url = urlsplit(handler.path)
    entry = {
        "method": handler.command,
        "path": url.path,
        "query": url.query,
        "headers": {k.lower(): v for k, v in handler.headers.items()},
        "body": body.decode("utf-8", "replace"),
        "at": time.time(),
    }
    with LOCK, open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def texts(content):
    """Every text in a message's content (string, blocks, tool results' nested blocks)."""
    if isinstance(content, str):
        yield content
        return
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            yield block["text"]
        if "content" in block:
            yield from texts(block["content"])


def decide(messages, tool_names):
    """('tool', path) or ('text', answer) for the conversation so far."""
    last = messages[-1] if messages else {}
    result_texts = []
    if last.get("role") == "tool":
        result_texts = list(texts(last.get("content")))
    elif last.get("role") == "user" and isinstance(last.get("content"), list):
        for block in last["content"]:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                result_texts += list(texts(block.get("content")))
    if result_texts:
        found = MARKER.search("\n".join(result_texts))
        return ("text", f"The file says {found.group(0)}." if found else "The tool said nothing I know.")
    user_texts = [t for m in messages if m.get("role") == "user" for t in texts(m.get("content"))]
    wanted = READ.search(user_texts[-1]) if user_texts else None
    if wanted and "Read" in tool_names:
        return ("tool", wanted.group(1))
    return ("text", "pong from the agent upstream")


def sse(handler, events):
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.end_headers()
    for name, data in events:
        prefix = f"event: {name}\n" if name else ""
        handler.wfile.write(f"{prefix}data: {json.dumps(data)}\n\n".encode())
        handler.wfile.flush()
    if events and events[0][0] is None:
        handler.wfile.write(b"data: [DONE]\n\n")


def anthropic_answer(handler, request):
    decision = decide(request.get("messages", []), [t.get("name") for t in request.get("tools", [])])
    model = request.get("model", "claude")
    usage = {"input_tokens": 321, "output_tokens": 12, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    if decision[0] == "tool":
        block = {"type": "tool_use", "id": "toolu_e2e_1", "name": "Read", "input": {"file_path": decision[1]}}
        stop = "tool_use"
    else:
        block = {"type": "text", "text": decision[1]}
        stop = "end_turn"
    if not request.get("stream"):
        body = {"id": "msg_e2e", "type": "message", "role": "assistant", "model": model, "content": [block],
                "stop_reason": stop, "stop_sequence": None, "usage": usage}
        return json_answer(handler, body)
    start = dict(block, **({"input": {}} if block["type"] == "tool_use" else {"text": ""}))
    delta = ({"type": "input_json_delta", "partial_json": json.dumps(block["input"])} if block["type"] == "tool_use"
             else {"type": "text_delta", "text": block["text"]})
    sse(handler, [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_e2e", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": dict(usage, output_tokens=1)}}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": {"output_tokens": 12}}),
        ("message_stop", {"type": "message_stop"}),
    ])


def openai_answer(handler, request):
    names = [t.get("function", {}).get("name") for t in request.get("tools", [])]
    decision = decide(request.get("messages", []), names)
    model = request.get("model", "gpt")
    usage = {"prompt_tokens": 321, "completion_tokens": 12, "total_tokens": 333}
    if decision[0] == "tool":
        call = {"id": "call_e2e_1", "type": "function",
                "function": {"name": "Read", "arguments": json.dumps({"file_path": decision[1]})}}
        message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": decision[1]}, "stop"
    base = {"id": "chatcmpl-e2e", "created": int(time.time()), "model": model}
    if not request.get("stream"):
        return json_answer(handler, dict(base, object="chat.completion", usage=usage,
                                         choices=[{"index": 0, "message": message, "finish_reason": finish}]))
    chunk = dict(base, object="chat.completion.chunk")
    delta = dict(message)
    if "tool_calls" in delta:
        delta["tool_calls"] = [dict(delta["tool_calls"][0], index=0)]
    events = [
        (None, dict(chunk, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])),
        (None, dict(chunk, choices=[{"index": 0, "delta": delta, "finish_reason": None}])),
        (None, dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": finish}])),
    ]
    if (request.get("stream_options") or {}).get("include_usage"):
        events.append((None, dict(chunk, choices=[], usage=usage)))
    sse(handler, events)


def json_answer(handler, body, status=200):
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def upstream(port, log):
    class Upstream(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            record(log, self, b"")
            json_answer(self, {"data": [], "has_more": False, "first_id": None, "last_id": None})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            record(log, self, body)
            request = json.loads(body or b"{}")
            path = urlsplit(self.path).path
            if path.endswith("/messages/count_tokens"):
                return json_answer(self, {"input_tokens": 42})
            if path.endswith("/messages"):
                return anthropic_answer(self, request)
            if path.endswith("/chat/completions"):
                return openai_answer(self, request)
            json_answer(self, {"error": {"message": f"no route {path}", "type": "not_found"}}, 404)

    ThreadingHTTPServer(("127.0.0.1", port), Upstream).serve_forever()


def tap(port, target, log):
    host, _, target_port = urlsplit(target).netloc.partition(":")

    class Tap(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            record(log, self, body)
            conn = http.client.HTTPConnection(host, int(target_port), timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            self.send_response(answer.status)
            for k, v in answer.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            while True:
                piece = answer.read1(65536)
                if not piece:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            conn.close()

        def forward_quietly(self):
            try:
                self.forward()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away (a health probe that read only the status)

        do_GET = do_POST = forward_quietly

    ThreadingHTTPServer(("127.0.0.1", port), Tap).serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        upstream(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "tap":
        tap(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown role {sys.argv[1]}")
