"""An oversized request is refused without keeping its memory: with
--max_message_bytes=64 MiB, a 100 MiB Lookup request (6 times) must get
RESOURCE_EXHAUSTED, the server must stay up, after each refusal
its RSS (lowest within 5 s; the median over the six refusals) must be below its level
before plus one message (the message itself is not kept), and refusals must not accumulate (the lowest of the last three
refusals is at most 80 MiB above the lowest of the first three: one
refusal's fragmentation varies by up to ~90 MiB, so comparing single rounds
was flaky, while a leak of even a third of each message grows past it). gRPC 1.51 buffers the whole message before it refuses
it; what the periodic trim cannot return is heap fragmentation, measured at
20-75 MiB here (docs/robustness.md). Without the trim, RSS climbed by the
message size each time (22 -> 123 -> 147 -> 182 MiB).

Bounded: six 100 MiB sends over loopback, ~10-30 s.

Run: PYTHONPATH=build/python:tests/testing /usr/bin/python3 \
        tests/fault/message_size_test.py --server build/server/embedserve
"""

import threading
import time

import fault_harness as h

LIMIT = 64 << 20
SEND = 100 << 20
RSS_SLACK_MIB = 48
ROUNDS = 6
ACCUMULATION_SLACK_MIB = 80


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def oversized_lookup(table, size):
    """A LookupRequest of about `size` bytes: one query whose packed ids are
    all 1 (one byte each), built directly in the wire format."""
    name = table.encode()
    head = b"\x0a" + varint(len(name)) + name
    n = size - len(head) - 16
    query = head + b"\x12" + varint(n) + b"\x01" * n
    return b"\x0a" + varint(len(query)) + query


class MessageSizeTest(h.FaultTest):

    def test_refused_message_does_not_keep_memory(self):
        server = self.start_server("", "--max_message_bytes=%d" % LIMIT)
        server.stub.CreateTable(h.create_request("t", 1000, 16), timeout=30)
        for _ in range(20):
            server.stub.Lookup(h.lookup_request("t", range(100)), timeout=10)
        time.sleep(0.5)
        base = server.rss_mib()
        payload = oversized_lookup("t", SEND)
        channel = server.new_channel()
        self.addCleanup(channel.close)
        raw_lookup = channel.unary_unary(h.SERVICE + "Lookup")  # bytes in, bytes out

        report, kept = [], []
        for k in range(ROUNDS):
            peak = [base]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    r = server.rss_mib()
                    if r is not None:
                        peak[0] = max(peak[0], r)
                    stop.wait(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                raw_lookup(payload, timeout=60)
                code, details = "OK", ""
            except h.grpc.RpcError as e:
                code, details = e.code().name, e.details()
            # The lowest RSS within 5 s (the trim runs every second; a busy
            # machine may delay it).
            now = float("inf")
            for _ in range(20):
                time.sleep(0.25)
                r = server.rss_mib()
                if r is not None:
                    now = min(now, r)
                if now - base < RSS_SLACK_MIB:
                    break
            stop.set()
            sampler.join()
            self.assert_alive(server, "after a %d MiB request" % (SEND >> 20))
            report.append("send %d: %s (%s); RSS %.0f MiB before, peak %.0f, %.0f lowest within 5 s "
                          "after" % (k, code, details[:80], base, peak[0], now))
            print(report[-1])
            self.assertEqual(code, "RESOURCE_EXHAUSTED",
                             "a %d MiB request over a %d MiB limit: %s %s"
                             % (SEND >> 20, LIMIT >> 20, code, details))
            kept.append(now - base)
        # The median over the refusals: one refusal's fragmentation alone
        # reached 106 MiB under CI load; a kept message raises every round.
        median = sorted(kept)[len(kept) // 2]
        self.assertLess(median, SEND >> 20,
                        "RSS stays %.0f MiB (median) above its level after a refusal, as much "
                        "as the refused message itself:\n%s" % (median, "\n".join(report)))
        # Fragmentation left by one refusal varies (10-97 MiB seen in one
        # run), upwards only: steady growth shows in the lowest rounds, so
        # compare the lowest of the last three with the lowest of the first.
        self.assertLess(min(kept[3:]) - min(kept[:3]), ACCUMULATION_SLACK_MIB,
                        "refused messages accumulate in RSS:\n%s" % "\n".join(report))
        got = server.stub.Lookup(h.lookup_request("t", [1, 2]), timeout=10)
        self.assertEqual(list(got.results[0].shape), [2, 16])


if __name__ == "__main__":
    h.main(__doc__)
