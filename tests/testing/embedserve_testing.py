"""What the Python tests share (not part of the client package): a real
embedserve process on 127.0.0.1 with a free port.

The tests run with PYTHONPATH=<build>/python:tests/testing (tests/CMakeLists.txt
sets it): the client package from the build tree, and this module.
"""

import os
import signal
import subprocess
import tempfile
import time


class ServerProcess:
    """Runs an embedserve binary on 127.0.0.1 with a free port, for tests
    and scripts, its data in a temporary directory unless `data_dir` is
    given (data_dir="" keeps tables in memory only). Use as a context
    manager; the server is stopped on exit."""

    def __init__(self, binary, *args, timeout=30.0, data_dir=None):
        self._dir = tempfile.TemporaryDirectory(prefix="embedserve-")
        port_file = os.path.join(self._dir.name, "port")
        self.data_dir = os.path.join(self._dir.name, "data") if data_dir is None else data_dir
        args = ("--data_dir=" + self.data_dir,) + args
        self._log = open(os.path.join(self._dir.name, "server.log"), "w+")
        self.proc = subprocess.Popen(
            [binary, "--address=127.0.0.1:0", "--port_file=" + port_file, *args],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("embedserve did not start:\n" + self.log())
            time.sleep(0.02)
        with open(port_file) as f:
            self.address = "127.0.0.1:" + f.read().strip()

    def log(self):
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def kill_process(self):
        """SIGKILL only (no wait, no cleanup): for a crash test's timer
        thread, while the test's own calls are in flight; stop() after."""
        if self.proc.poll() is None:
            self.proc.kill()

    def kill(self):
        """SIGKILL: no shutdown, no flush (for crash tests)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stop()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
