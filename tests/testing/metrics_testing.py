"""Probes of a real embedserve process's metrics and health ports, for the
Python tests: scrape /metrics and parse its samples, send raw bytes to the
HTTP port, call grpc.health.v1.Health/Check without a grpc_health package,
read a --*_port_file, pick a free loopback port, poll with a bound.

    from metrics_testing import health_check, parse, read_port, scrape, SERVING
"""

import re
import socket
import time
import urllib.request

import grpc

SERVING, NOT_SERVING = 1, 2
SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$")


def wait_until(condition, timeout, what):
    """Polls condition() until it is truthy (returns it) or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def read_port(path):
    with open(path) as f:
        return int(f.read().strip())


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        assert r.status == 200, r.status
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return r.read().decode()


def parse(text):
    """{'name{labels}': value} of every sample line, as rendered."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        assert m, "not a sample line: %r" % line
        samples[m.group(1)] = float(m.group(2))
    return samples


def http_raw(port, data, shut_write=False):
    """Sends bytes to the metrics port; returns all it answers (10 s bound)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close early (a refused head)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out


def health_check(address, service="", credentials=None, timeout=10):
    """grpc.health.v1.Health/Check with hand-encoded messages (Debian has no
    grpc_health package): the status number (1 SERVING, 2 NOT_SERVING)."""
    channel = (grpc.secure_channel(address, credentials) if credentials
               else grpc.insecure_channel(address))
    with channel:
        name = service.encode()
        length = b""  # a varint
        n = len(name)
        while True:
            length += bytes([n & 0x7f | (0x80 if n > 0x7f else 0)])
            n >>= 7
            if not n:
                break
        request = b"\x0a" + length + name if name else b""  # HealthCheckRequest{service}
        answer = channel.unary_unary("/grpc.health.v1.Health/Check")(request, timeout=timeout)
        return answer[1] if answer[:1] == b"\x08" else 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
