"""Metrics and the health port of a real embedserve process.

The server runs on 127.0.0.1 with --metrics_address and --health_address on
port 0 (the bound ports come back through --metrics_port_file and
--health_port_file). The test makes calls over gRPC and asserts that the
scrape moved by exactly what was done; checks the scrape with `promtool check
metrics`; starts a real `prometheus` (loopback, its own temporary directory,
stopped by PID) that scrapes the server, and asks its HTTP API for the lookup
counter; sends garbage to the metrics port; probes the health port (SERVING,
NOT_SERVING while shutting down, nothing else served there, plaintext beside
a TLS main port). Every wait is bounded.

    PYTHONPATH=BUILD/python:tests/testing metrics_test.py --server EMBEDSERVE
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

import grpc
import numpy as np

from metrics_testing import (NOT_SERVING, SERVING, free_port, health_check, http_raw, parse,
                             read_port, scrape, wait_until)

ARGS = None


class MetricsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        from embedserve_client import EmbeddingClient
        from embedserve_testing import ServerProcess
        cls.dir = tempfile.mkdtemp(prefix="embedserve-metrics-")
        cls.server = ServerProcess(
            ARGS.server, "--metrics_address=127.0.0.1:0",
            "--metrics_port_file=" + cls.path("metrics.port"), "--health_address=127.0.0.1:0",
            "--health_port_file=" + cls.path("health.port"), "--reflection")
        try:
            # The port file is written last: the other two exist by now.
            cls.metrics_port = read_port(cls.path("metrics.port"))
            cls.health_address = "127.0.0.1:%d" % read_port(cls.path("health.port"))
            cls.client = EmbeddingClient(cls.server.address, timeout=30)
            cls.client.wait_for_ready()
            cls.client.create_table("t", 100, 4, init="zeros", optimizer="sgd",
                                    optimizer_args={"lr": 1.0})
            cls.client.create_table("u", 50, 8)
        except Exception:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()
        shutil.rmtree(cls.dir)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def scrape(self):
        return parse(scrape(self.metrics_port))

    def test_counters_move_by_exactly_what_was_done(self):
        from embedserve_client._proto import embedserve_pb2 as pb
        before = self.scrape()
        for _ in range(5):
            self.client.lookup("t", np.arange(7))
        self.client.lookup("t", np.arange(6).reshape(2, 3), output="float16")
        for _ in range(2):
            self.client.lookup_pooled("u", [1, 2, 3, 4, 5, 6], offsets=[0, 2])
        with self.assertRaises(grpc.RpcError) as cm:
            self.client.lookup("missing", [0])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError):
            self.client.lookup("t", [100])  # out of range: INVALID_ARGUMENT, no rows counted
        for _ in range(3):
            self.client.push("t", [1, 2, 3, 4], np.ones((4, 4), np.float32))
        answers = list(self.client.push_stream(
            [("t", [5, 6, 7, 8, 9], np.ones((5, 4), np.float32))] * 2))
        self.assertEqual([a.code for a in answers], [0, 0])

        def delta(series):
            return after.get(series, 0) - before.get(series, 0)
        rpc = 'embedserve_rpc_requests_total{method="%s",code="%s"}'
        # A stream is counted when it is done, which may be just after the
        # client has its last answer.
        after = wait_until(
            lambda: (lambda s: s if s.get(rpc % ("StreamGradients", "OK"), 0) -
                     before.get(rpc % ("StreamGradients", "OK"), 0) >= 1 else None)(self.scrape()),
            10, "the stream to be counted")
        self.assertEqual(delta(rpc % ("Lookup", "OK")), 6)
        self.assertEqual(delta(rpc % ("Lookup", "NOT_FOUND")), 1)
        self.assertEqual(delta(rpc % ("Lookup", "INVALID_ARGUMENT")), 1)
        self.assertEqual(delta(rpc % ("LookupPooled", "OK")), 2)
        self.assertEqual(delta(rpc % ("PushGradients", "OK")), 3)
        self.assertEqual(delta(rpc % ("StreamGradients", "OK")), 1)
        rows = 'embedserve_table_rows_%s_total{table="%s"}'
        self.assertEqual(delta(rows % ("looked_up", "t")), 5 * 7 + 6)
        self.assertEqual(delta(rows % ("looked_up", "u")), 2 * 6)
        self.assertEqual(delta(rows % ("pushed", "t")), 3 * 4 + 2 * 5)
        self.assertEqual(delta(rows % ("pushed", "u")), 0)
        self.assertNotIn('embedserve_table_rows_looked_up_total{table="missing"}', after)

        # Each histogram: cumulative buckets, +Inf == _count == requests.
        for key, count in after.items():
            m = re.match(r'embedserve_rpc_requests_total\{(method="\w+",code="\w+")\}$', key)
            if not m:
                continue
            labels = m.group(1)
            buckets = sorted(
                ((float(le) if le != "+Inf" else float("inf")), v) for k, v in after.items()
                for le in re.findall(r'^embedserve_rpc_duration_seconds_bucket\{%s,le="([^"]+)"\}$'
                                     % re.escape(labels), k))
            self.assertEqual(len(buckets), 17, labels)
            self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets), labels)
            self.assertEqual(buckets[-1][1], count, labels)
            self.assertEqual(after["embedserve_rpc_duration_seconds_count{%s}" % labels], count)
            self.assertGreater(after["embedserve_rpc_duration_seconds_sum{%s}" % labels], 0)

        # Gauges read at scrape time agree with the server.
        info = self.client.describe_table("t")
        self.assertEqual(after['embedserve_table_version{table="t"}'], info.version)
        self.assertEqual(after['embedserve_table_rows{table="t"}'], 100)
        self.assertEqual(after['embedserve_table_rows{table="u"}'], 50)
        self.assertGreaterEqual(after['embedserve_table_memory_bytes{table="t"}'], 100 * 4 * 4)
        self.assertGreaterEqual(after["embedserve_tables"], 2)
        # Changes go to the update log (one record each), rows to RocksDB in
        # snapshots.
        self.assertGreater(after["embedserve_update_log_appended_records_total"],
                           before["embedserve_update_log_appended_records_total"])
        self.assertGreater(after["embedserve_update_log_bytes"], 0)
        self.assertEqual(after["embedserve_update_log_last_position"],
                         before["embedserve_update_log_last_position"] +
                         after["embedserve_update_log_appended_records_total"] -
                         before["embedserve_update_log_appended_records_total"])
        self.assertEqual(after["embedserve_rocksdb_write_stopped"], 0)
        # Rows reach RocksDB in snapshots (a checkpoint takes one).
        self.client.create_checkpoint("metrics")
        self.assertGreater(self.scrape()["embedserve_rocksdb_sst_files_bytes"], 0)
        self.assertGreater(after["process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(after["process_threads"], 1)
        self.assertGreater(after["process_open_fds"], 3)
        kernels = re.search(r"gather kernels: (\w+)", self.server.log()).group(1)
        build = [k for k in after if k.startswith("embedserve_build_info{")]
        self.assertEqual(len(build), 1, build)
        self.assertIn('simd="%s"' % kernels, build[0])
        self.assertRegex(build[0], r'version="\d+\.\d+\.\d+",compiler="\w+ [^"]+"')
        self.assertEqual(after[build[0]], 1)

    def test_promtool_accepts_the_scrape(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.fail("promtool missing: install Debian's prometheus (deploy/install-deps.sh)")
        self.client.lookup("t", [1, 2])  # so that histograms are in the scrape
        text = scrape(self.metrics_port)
        self.assertIn("embedserve_rpc_duration_seconds_bucket", text)
        out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # promtool does fail on a broken exposition (so the check above means
        # something): a counter without _total and a sample without a value.
        broken = text + "# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter\n"
        out = subprocess.run([promtool, "check", "metrics"], input=broken, capture_output=True,
                             text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)

    def test_a_real_prometheus_scrapes_the_server(self):
        prometheus = shutil.which("prometheus")
        if prometheus is None:
            self.fail("prometheus missing: install Debian's prometheus (deploy/install-deps.sh)")
        self.client.create_table("p", 40, 2)
        for _ in range(4):
            self.client.lookup("p", np.arange(9))
        work = tempfile.mkdtemp(prefix="embedserve-prometheus-", dir=self.dir)
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: embedserve\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % self.metrics_port)
        query = 'embedserve_table_rows_looked_up_total{job="embedserve",table="p"}'
        # Prometheus cannot take port 0: a free port is picked by binding
        # one and closing it, so another process may take it meanwhile; then
        # prometheus exits and the next attempt picks another.
        for attempt in range(3):
            port = free_port()
            log = open(os.path.join(work, "prometheus-%d.log" % attempt), "w+")
            proc = subprocess.Popen(
                [prometheus, "--config.file=" + os.path.join(work, "prometheus.yml"),
                 "--storage.tsdb.path=" + os.path.join(work, "tsdb-%d" % attempt),
                 "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                cwd=work, stdout=log, stderr=subprocess.STDOUT)
            try:
                def answer():
                    if proc.poll() is not None:
                        return "exited"
                    url = "http://127.0.0.1:%d/api/v1/query?%s" % (
                        port, urllib.parse.urlencode({"query": query}))
                    try:
                        with urllib.request.urlopen(url, timeout=5) as r:
                            result = json.load(r)["data"]["result"]
                    except OSError:
                        return None  # not listening yet
                    return result or None  # empty until the first scrape
                result = wait_until(answer, 60, "prometheus to scrape embedserve")
                if result == "exited":
                    log.seek(0)
                    print("prometheus exited (attempt %d):\n%s" % (attempt, log.read()),
                          file=sys.stderr)
                    continue
                self.assertEqual(len(result), 1, result)
                self.assertEqual(float(result[0]["value"][1]), 4 * 9)
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/api/v1/query?query=up" % port, timeout=5) as r:
                    up = json.load(r)["data"]["result"]
                self.assertEqual([float(u["value"][1]) for u in up], [1.0], up)
                return
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                log.close()
        self.fail("prometheus did not start in 3 attempts")

    def test_bad_http_requests_get_errors_and_the_server_stays_up(self):
        port = self.metrics_port
        self.assertTrue(http_raw(port, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(http_raw(port, b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 "))
        self.assertTrue(http_raw(port, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 "))
        self.assertTrue(http_raw(port, b"DELETE /metrics HTTP/1.1\r\n\r\n")
                        .startswith(b"HTTP/1.1 405 "))
        self.assertTrue(http_raw(port, b"\x00\xff" * 20000).startswith(b"HTTP/1.1 431 "))
        self.assertTrue(http_raw(port, b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 100000 +
                                 b"\r\n\r\n").startswith(b"HTTP/1.1 431 "))
        self.assertTrue(http_raw(port, b"GET /metrics HTTP/9.9\r\n\r\n")
                        .startswith(b"HTTP/1.1 400 "))
        # Half a request, then the client's side closed: nothing to answer.
        self.assertEqual(http_raw(port, b"GET /met", shut_write=True), b"")
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
        self.assertIsNone(self.server.proc.poll())
        self.assertIn("embedserve_build_info", scrape(port))
        self.assertGreaterEqual(len(self.client.list_tables()), 2)

    def test_health_port_serves_only_health(self):
        from embedserve_client._proto import embedserve_pb2 as pb
        from embedserve_client._proto import embedserve_pb2_grpc as pb_grpc
        self.assertEqual(health_check(self.health_address), SERVING)
        self.assertEqual(health_check(self.health_address, "embedserve.v1.EmbeddingService"),
                         SERVING)
        with self.assertRaises(grpc.RpcError) as cm:
            health_check(self.health_address, "no.such.Service")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        # Messages are limited to a few KiB there.
        with self.assertRaises(grpc.RpcError) as cm:
            health_check(self.health_address, "x" * 10000)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        with grpc.insecure_channel(self.health_address) as channel:
            stub = pb_grpc.EmbeddingServiceStub(channel)
            for call, request in ((stub.ListTables, pb.ListTablesRequest()),
                                  (stub.Lookup, pb.LookupRequest()),
                                  (stub.CreateTable, pb.CreateTableRequest())):
                with self.assertRaises(grpc.RpcError) as cm:
                    call(request, timeout=10)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
            with self.assertRaises(grpc.RpcError) as cm:
                list(stub.StreamGradients(iter([pb.PushRequest()]), timeout=10))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        # Reflection (on for the main port here) is not on the health port.
        reflect = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        list_services = b"\x3a\x00"  # ServerReflectionRequest{list_services: ""}
        with grpc.insecure_channel(self.server.address) as channel:
            answers = list(channel.stream_stream(reflect)(iter([list_services]), timeout=10))
            self.assertIn(b"embedserve.v1.EmbeddingService", answers[0])
        with grpc.insecure_channel(self.health_address) as channel:
            with self.assertRaises(grpc.RpcError) as cm:
                list(channel.stream_stream(reflect)(iter([list_services]), timeout=10))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class HealthLifecycleTest(unittest.TestCase):
    """Servers of their own: one shut down, one with TLS."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="embedserve-health-")
        self.addCleanup(shutil.rmtree, self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, *args):
        from embedserve_testing import ServerProcess
        server = ServerProcess(ARGS.server, "--health_address=127.0.0.1:0",
                               "--health_port_file=" + self.path("health.port"), *args)
        self.addCleanup(server.stop)
        return server, "127.0.0.1:%d" % read_port(self.path("health.port"))

    def test_health_turns_not_serving_when_shutdown_begins(self):
        from embedserve_client._proto import embedserve_pb2 as pb
        from embedserve_client._proto import embedserve_pb2_grpc as pb_grpc
        server, health = self.start("--metrics_address=127.0.0.1:0",
                                    "--metrics_port_file=" + self.path("metrics.port"))
        metrics_port = read_port(self.path("metrics.port"))
        self.assertEqual(health_check(health), SERVING)
        # An upload left open keeps the main port draining (up to 5 s) after
        # SIGTERM; it is in the server once its staging file exists.
        uploads = os.path.join(server.data_dir, "uploads")
        release = threading.Event()

        def chunks():
            yield pb.ImportChunk(request=pb.LoadTableRequest(name="x", format=pb.NPY))
            release.wait(20)
        channel = grpc.insecure_channel(server.address)
        self.addCleanup(channel.close)
        self.addCleanup(release.set)
        upload = pb_grpc.EmbeddingServiceStub(channel).ImportTable.future(chunks(), timeout=30)
        wait_until(lambda: os.listdir(uploads), 10, "the upload to be staged")
        server.proc.send_signal(signal.SIGTERM)

        # The health port answers for at least the 5 s the drain lasts; every
        # answer after SIGTERM reached the server must be NOT_SERVING. Polled
        # until it is, or until the port is gone (then it was never seen).
        def status():
            try:
                return health_check(health, timeout=5)
            except grpc.RpcError:
                return -1  # closed: the drain is over
        deadline = time.monotonic() + 30
        seen = status()
        while seen == SERVING and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = status()
        self.assertEqual(seen, NOT_SERVING, "SERVING for 30 s, or closed without NOT_SERVING")
        self.assertEqual(health_check(health, "embedserve.v1.EmbeddingService"), NOT_SERVING)
        self.assertIn("embedserve_build_info", scrape(metrics_port))  # scrapes go on meanwhile
        release.set()
        with self.assertRaises(grpc.RpcError):
            upload.result(timeout=30)
        server.proc.wait(timeout=30)
        self.assertEqual(server.proc.returncode, 0)

    def test_health_port_is_plaintext_beside_a_tls_main_port(self):
        def openssl(*args):
            subprocess.run(["openssl", *args], cwd=self.dir, check=True, capture_output=True,
                           timeout=60)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ca")
        with open(self.path("server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "server.ext")
        server, health = self.start("--tls_cert=" + self.path("server.pem"),
                                    "--tls_key=" + self.path("server.key"))
        self.assertEqual(health_check(health), SERVING)
        self.assertEqual(health_check(health, "embedserve.v1.EmbeddingService"), SERVING)
        # The main port speaks only TLS: plaintext fails there, TLS answers.
        with self.assertRaises(grpc.RpcError) as cm:
            health_check(server.address, timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        with open(self.path("ca.pem"), "rb") as f:
            tls = grpc.ssl_channel_credentials(root_certificates=f.read())
        self.assertEqual(health_check(server.address, credentials=tls), SERVING)


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="path of the embedserve binary")
    ARGS, rest = parser.parse_known_args()
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
