"""Helpers shared by the scripts that run gateway processes (load.py, soak.py)."""

import socket
import time
import urllib.request


def free_port():
    """A TCP port on loopback that nothing listens on now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(url, timeout, poll):
    """Waits until `url` answers, polling every `poll` seconds; exits after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(poll)
    raise SystemExit(f"{url} did not come up")
