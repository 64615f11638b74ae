"""PushWindow: gradient pushes sent without waiting for their answers.

A trainer's step used to wait for every push's round trip before torch could
go on. A PushWindow sends pushes over one StreamGradients stream (so the
server applies them in the order sent) and returns at once; at most `window`
pushes are unanswered at a time (the next push waits for the oldest answer).
Each push carries the window's trainer name and an increasing sequence
number (PushRequest.trainer: the server applies each at most once), and a
lookup of a table with pushes in flight asks the server to wait for the
last of them (LookupQuery.min_sequence, see EmbeddingClient.lookup), so a
trainer reads its own writes exactly as with synchronous pushes, without
waiting for the answers on the client.

Errors: a push the server refused (or a stream that broke) is raised as a
PushError at the window's next push, at flush() or at close(), naming the
table and the sequence number. A lookup that waited for a push that failed
raises that PushError rather than the lookup's DEADLINE_EXCEEDED.

One thread pushes through a window at a time (the sequence numbers are one
trainer's order); lookups may come from any thread.
"""

import collections
import os
import queue
import secrets
import socket
import threading

import grpc

from . import _wire
from ._proto import embedserve_pb2 as pb

_STREAM_METHOD = "/embedserve.v1.EmbeddingService/StreamGradients"


def default_trainer_name():
    """host-pid-random: unique per window, within PushRequest.trainer's
    alphabet ([A-Za-z0-9_.:-], at most 128 characters)."""
    host = "".join(c if c.isalnum() or c in "_.:-" else "_" for c in socket.gethostname())
    return "%s-%d-%s" % (host[:64] or "host", os.getpid(), secrets.token_hex(6))


class PushError(RuntimeError):
    """A push of the window failed: nothing of it was applied.

    table, sequence: the push. code: a grpc.StatusCode. details: the
    server's message."""

    def __init__(self, table, sequence, code, details):
        super().__init__("push %d to table '%s' failed: %s: %s"
                         % (sequence, table, code.name, details))
        self.table, self.sequence, self.code, self.details = table, sequence, code, details


_CODES = {c.value[0]: c for c in grpc.StatusCode}


class PushWindow:
    """Pushes of one trainer, at most `window` unanswered (window >= 1).

    client: an EmbeddingClient (its channel and token are used).
    trainer: the name sent with every push (default: default_trainer_name()).
    """

    def __init__(self, client, window=4, trainer=None):
        if window < 1:
            raise ValueError("a push window holds at least one push, not %r" % (window,))
        self.window = int(window)
        self.trainer = trainer or default_trainer_name()
        self._client = client
        self._stream = client._channel.stream_stream(
            _STREAM_METHOD, request_serializer=None,
            response_deserializer=pb.PushResponse.FromString)
        self._cv = threading.Condition()
        self._pending = collections.deque()  # (sequence, table) sent, unanswered
        self._last_sent = {}  # table -> (last sequence sent, unanswered pushes to it)
        self._next_sequence = 1
        self._error = None  # the first PushError not raised yet
        self._requests = None  # the open stream's queue (None: no stream)
        self._reader = None
        self._closed = False
        self._waiting = set()  # lookups that wait for our pushes (futures)
        self.last_response = None

    # -- what lookups ask --------------------------------------------------
    def pending_sequence(self, table):
        """The sequence a lookup of `table` must wait for: the last push sent
        to it if one is unanswered, else 0 (nothing to wait for)."""
        with self._cv:
            last = self._last_sent.get(table)
            return last[0] if last else 0

    def raise_error(self):
        """Raises the first failed push not raised yet, if any (and forgets it)."""
        with self._cv:
            self._raise_locked()

    def wait_unless_push_fails(self, future):
        """The result of `future` (a gRPC call that waits for this window's
        pushes on the server), or the PushError of a push that fails while
        it waits: the call is then cancelled rather than left waiting for a
        sequence the server will never apply."""
        with self._cv:
            self._raise_locked()
            self._waiting.add(future)
        try:
            return future.result()
        except grpc.FutureCancelledError:
            self.raise_error()
            raise
        finally:
            with self._cv:
                self._waiting.discard(future)

    def in_flight(self):
        with self._cv:
            return len(self._pending)

    # -- pushing -----------------------------------------------------------
    def push(self, table, ids, grads):
        """Sends one push (ids: int64 array, grads: (len(ids), dim) float32)
        and returns its sequence number without waiting for the answer;
        waits while `window` pushes are unanswered. Raises an earlier push's
        PushError first (this push is then not sent)."""
        with self._cv:
            if self._closed:
                raise ValueError("the push window is closed")
            self._raise_locked()
            while len(self._pending) >= self.window:
                self._cv.wait()
                self._raise_locked()
            sequence = self._next_sequence
            self._next_sequence += 1
            self._pending.append((sequence, table))
            count = self._last_sent.get(table, (0, 0))[1]
            self._last_sent[table] = (sequence, count + 1)
            if self._requests is None:
                self._open_stream()
            requests = self._requests
        requests.put(_wire.push_request(table, ids, grads, sequence, self.trainer))
        return sequence

    def flush(self, timeout=None):
        """Waits until every push sent has been answered; raises the first
        PushError not raised yet. TimeoutError if `timeout` seconds pass."""
        with self._cv:
            if not self._cv.wait_for(lambda: not self._pending or self._error, timeout):
                raise TimeoutError("%d pushes still unanswered after %s s"
                                   % (len(self._pending), timeout))
            self._raise_locked()

    def close(self, timeout=None):
        """flush(), then ends the stream. Idempotent."""
        try:
            if not self._closed:
                self.flush(timeout)
        finally:
            with self._cv:
                self._closed = True
                requests, reader = self._requests, self._reader
                self._requests = None
            if requests is not None:
                requests.put(None)
                reader.join(timeout)

    # -- inside ------------------------------------------------------------
    def _raise_locked(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _open_stream(self):
        requests = queue.SimpleQueue()
        # The request iterator ends at None (close) and is read by gRPC's
        # own thread; the answers are read by ours.
        responses = self._stream(iter(requests.get, None))
        self._requests = requests
        self._reader = threading.Thread(target=self._read, args=(responses, requests),
                                        name="embedserve-push-window", daemon=True)
        self._reader.start()

    def _answered(self, sequence, table, code, details):
        """Called with the lock held for each push answered (in order)."""
        last, count = self._last_sent[table]
        if count == 1:
            del self._last_sent[table]
        else:
            self._last_sent[table] = (last, count - 1)
        if code is not grpc.StatusCode.OK and self._error is None:
            self._error = PushError(table, sequence, code, details)
            for future in self._waiting:
                future.cancel()

    def _read(self, responses, requests):
        try:
            for resp in responses:
                with self._cv:
                    sequence, table = self._pending.popleft()
                    if resp.sequence != sequence:  # the stream's order is the contract
                        code, details = grpc.StatusCode.INTERNAL, (
                            "answer for push %d came when %d was due" % (resp.sequence, sequence))
                    else:
                        code = _CODES.get(resp.code, grpc.StatusCode.UNKNOWN)
                        details = resp.error
                        self.last_response = resp
                    self._answered(sequence, table, code, details)
                    self._cv.notify_all()
        except grpc.RpcError as e:
            error = (e.code(), e.details())
        else:
            error = (grpc.StatusCode.UNAVAILABLE, "the push stream ended with pushes unanswered")
        with self._cv:
            # The pushes still unanswered are in an unknown state: the first
            # is reported, all are forgotten (a resend with the same trainer
            # and sequence would be applied at most once). The next push
            # opens a new stream.
            while self._pending:
                sequence, table = self._pending.popleft()
                self._answered(sequence, table, error[0], error[1])
            if self._requests is requests:
                self._requests = None
                requests.put(None)
            self._cv.notify_all()
