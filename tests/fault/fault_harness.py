"""Shared pieces of the fault tests: argument parsing (--server), a
server process whose output is kept after it dies, RSS of a pid, a lookup
latency probe, and waiting for leftover files to go.

Every server started here is stopped by its pid (SIGTERM, then SIGKILL) by the
test's cleanups, whatever happens; temporary directories are removed the same
way. Nothing here talks to anything but 127.0.0.1.
"""

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ARGS = None
pb = None
pb_grpc = None
grpc = None

SERVICE = "/embedserve.v1.EmbeddingService/"


def setup(doc):
    """Parses --server and imports grpc and the stubs (embedserve_client from
    PYTHONPATH); returns the rest of argv for unittest."""
    global ARGS, pb, pb_grpc, grpc
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--server", required=True, help="path of the embedserve binary")
    ARGS, rest = parser.parse_known_args()
    import grpc as grpc_module
    from embedserve_client._proto import embedserve_pb2
    from embedserve_client._proto import embedserve_pb2_grpc
    grpc, pb, pb_grpc = grpc_module, embedserve_pb2, embedserve_pb2_grpc
    return rest


def main(doc):
    rest = setup(doc)
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)


_flags_cache = {}


def server_has_flag(name):
    """Whether the server binary knows --name (from --helpfull)."""
    if name not in _flags_cache:
        out = subprocess.run([ARGS.server, "--helpfull"], capture_output=True, text=True,
                             timeout=30)
        text = out.stdout + out.stderr
        _flags_cache[name] = ("-" + name + " ") in text or ("-" + name + ")") in text
    return _flags_cache[name]


def rss_mib(pid):
    """VmRSS of pid in MiB (None once it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Server:
    """One embedserve process on 127.0.0.1:<free port>. Its stdout and stderr go
    to a log file that outlives the process (read with log()), so a crash
    can be shown. data_dir="" runs memory-only."""

    def __init__(self, data_dir, *flags, start_timeout=60.0, env=None):
        self._dir = tempfile.mkdtemp(prefix="embedserve-fault-")
        self.data_dir = data_dir
        self.log_path = os.path.join(self._dir, "server.log")
        port_file = os.path.join(self._dir, "port")
        self._log = open(self.log_path, "w+")
        cmd = [ARGS.server, "--address=127.0.0.1:0", "--port_file=" + port_file,
               "--data_dir=" + data_dir, *flags]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        deadline = time.monotonic() + start_timeout
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError("embedserve did not start (exit %s):\n%s"
                                   % (self.proc.returncode, log))
            time.sleep(0.02)
        with open(port_file) as f:
            self.address = "127.0.0.1:" + f.read().strip()
        self.port = int(self.address.rsplit(":", 1)[1])
        self._channel = grpc.insecure_channel(
            self.address, options=[("grpc.max_receive_message_length", -1),
                                   ("grpc.max_send_message_length", -1)])
        self.stub = pb_grpc.EmbeddingServiceStub(self._channel)
        grpc.channel_ready_future(self._channel).result(timeout=10)

    def alive(self):
        return self.proc.poll() is None

    def rss_mib(self):
        return rss_mib(self.pid)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=25):
        return "\n".join(self.log().splitlines()[-lines:])

    def exit_description(self):
        rc = self.proc.poll()
        if rc is None:
            return "running"
        if rc < 0:
            return "killed by %s" % signal.Signals(-rc).name
        return "exited with status %d" % rc

    def new_channel(self):
        return grpc.insecure_channel(
            self.address, options=[("grpc.max_receive_message_length", -1),
                                   ("grpc.max_send_message_length", -1)])

    def terminate(self, timeout):
        """SIGTERM; returns the seconds until exit, or None if it is still
        running after `timeout` (then it is left running: stop() kills it).
        Our own channel is closed first: gRPC's shutdown lets an idle client
        connection linger until a timer tick (up to ~5 s), which is not what
        the tests measure."""
        if self.proc.poll() is not None:
            return 0.0
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - start

    def kill(self):
        """SIGKILL, by pid: no shutdown, no flush."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """Stops the process (SIGTERM, SIGKILL after 10 s) and removes its
        temporary directory; safe to call twice."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            if getattr(self, "_channel", None) is not None:
                self._channel.close()
                self._channel = None
            if not self._log.closed:
                self._log.close()
            shutil.rmtree(self._dir, ignore_errors=True)


class FaultTest(unittest.TestCase):
    """A TestCase with helpers that register their own cleanup."""

    def temp_dir(self, prefix="embedserve-fault-"):
        d = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def start_server(self, data_dir, *flags, **kw):
        s = Server(data_dir, *flags, **kw)
        self.addCleanup(s.stop)
        return s

    def assert_alive(self, server, what, grace=0.0):
        """Fails, with the server's last output, if it has exited. After an
        error answer pass a grace (s): a dying server's socket closes a
        little before its process is gone."""
        if grace > 0:
            try:
                server.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if not server.alive():
            self.fail("the server died %s (%s); its last output:\n%s"
                      % (what, server.exit_description(), server.log_tail()))


def grace_for(error):
    """How long to wait for a server to die after this error answer: an
    UNAVAILABLE may be its socket closing as it crashes; other codes are
    answers it gave."""
    return 1.0 if error.code() == grpc.StatusCode.UNAVAILABLE else 0.0


def create_request(name, rows, dim, seed=0, with_values=False):
    """A CreateTable request; with_values gives the rows (from_pretrained), so
    that the table is written to the store whole rather than as one update log
    record."""
    spec = pb.TableSpec(name=name, num_embeddings=rows, embedding_dim=dim)
    spec.initializer.kind = pb.Initializer.NORMAL
    spec.initializer.seed = seed
    if not with_values:
        return pb.CreateTableRequest(spec=spec)
    import numpy as np
    values = np.random.default_rng(seed).normal(size=(rows, dim)).astype("<f4")
    return pb.CreateTableRequest(spec=spec, initial_values=values.tobytes())


def lookup_request(table, ids):
    return pb.LookupRequest(queries=[pb.LookupQuery(table=table, ids=list(ids))])


def rows_of(response, dim):
    import numpy as np
    return np.frombuffer(response.results[0].values, dtype="<f4").reshape(-1, dim)


def table_names(stub, timeout=10):
    return [t.spec.name for t in stub.ListTables(pb.ListTablesRequest(), timeout=timeout).tables]


class LatencyProbe:
    """Looks up a few rows of `table` over its own channel, back to back (with
    `pause` s between calls), until stop(); keeps every call's latency
    (failed ones too) and every error."""

    def __init__(self, server, table, ids=(0, 1, 2, 3), pause=0.002, timeout=5.0):
        self._channel = server.new_channel()
        self._stub = pb_grpc.EmbeddingServiceStub(self._channel)
        self._req = lookup_request(table, ids)
        self._pause, self._timeout = pause, timeout
        self.latencies, self.errors = [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                self._stub.Lookup(self._req, timeout=self._timeout)
                self.latencies.append(time.monotonic() - t)
            except grpc.RpcError as e:
                # A failed call counts in the percentiles with the time it took
                # (a deadline is a latency of at least the timeout).
                self.latencies.append(time.monotonic() - t)
                self.errors.append("%s: %s" % (e.code().name, e.details()))
            self._stop.wait(self._pause)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=self._timeout + 5)
        self._channel.close()
        return self

    def percentile(self, q):
        if not self.latencies:
            return float("inf")
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q / 100.0 * len(s)))]

    def summary(self):
        return "%d lookups, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d errors" % (
            len(self.latencies), 1e3 * self.percentile(50), 1e3 * self.percentile(99),
            1e3 * (max(self.latencies) if self.latencies else float("inf")), len(self.errors))


def measure_lookups(server, table, seconds):
    probe = LatencyProbe(server, table).start()
    time.sleep(seconds)
    return probe.stop()


def leftover_uploads(data_dir, before=()):
    """Upload files that exist now: /tmp/embedserve-import-* not in `before`,
    and anything under <data_dir>/uploads/."""
    found = [p for p in glob.glob("/tmp/embedserve-import-*") if p not in before]
    if data_dir:
        found += glob.glob(os.path.join(data_dir, "uploads", "*"))
    return sorted(found)


def leftover_staging(data_dir):
    """Bulk-write staging folders of the store (ingest-*) in data_dir."""
    return sorted(glob.glob(os.path.join(data_dir, "ingest-*")))


def wait_until(predicate, timeout, step=0.1):
    """Polls predicate() until it is true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def _open_paths():
    """Paths any process here holds open (from /proc/*/fd)."""
    paths = set()
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        try:
            for fd in os.listdir(fd_dir):
                try:
                    paths.add(os.readlink(os.path.join(fd_dir, fd)))
                except OSError:
                    pass
        except OSError:
            pass
    return paths


def remove_orphan_uploads(before):
    """Removes /tmp/embedserve-import-* files that appeared after `before`
    and that no process holds open: what a stopped server of ours leaked
    (another test's upload in progress is open, so it is left alone)."""
    in_use = _open_paths()
    for p in glob.glob("/tmp/embedserve-import-*"):
        if p not in before and p not in in_use:
            try:
                os.unlink(p)
            except OSError:
                pass
