"""The local log forwarder (Fluent Bit's role without Docker): lines in, Kafka out,
through a bounded disk buffer.

    service --send()--> open chunk --seal--> chunk file (DiskBuffer) --produce--> app.logs
                                                                 <--acks (acks=all)--

- A line is accepted into the open chunk; the chunk is sealed (written, fsync'd) when it
  is full or ``flush_interval_s`` old, whichever comes first.
- A background thread sends sealed chunks, oldest first, at most ``max_inflight_chunks``
  at a time (that bounds the memory a Kafka outage can take), and deletes a chunk's file
  only when Kafka has acknowledged every line of it (delivery callbacks; acks=all and
  the idempotent producer, so the producer's own retries add no duplicates).
- Kafka down: the producer keeps retrying the chunks in flight; new chunks wait on disk.
  A chunk whose lines time out goes back to the head of the queue with just the lines
  still unacknowledged. Back up: everything drains in order.
- Buffer full: the oldest waiting chunk is dropped and counted (:meth:`Forwarder.stats`).
- A line longer than ``max_line_bytes`` is refused and counted, never sent: Kafka would
  refuse it anyway, and one bad line must not block the chunk behind it.

Duplicates are possible (a line whose acknowledgement was lost in an outage is sent
again); loss is not, within the buffer limit, except for the open chunk (at most
``flush_interval_s`` of lines) if the forwarder process itself is killed.

Process mode: ``flowgate logs forward`` reads lines from stdin (``service | flowgate
logs forward``), the simplest thing a service can write to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Producer

from flowgate.logs import MAX_MESSAGE_BYTES, TOPIC
from flowgate.logs.buffer import HEADER_BYTES, LINE_OVERHEAD, Chunk, CorruptChunk, DiskBuffer

log = logging.getLogger(__name__)

# A line may be as long as a chunk holds; the topic takes MAX_MESSAGE_BYTES, above that,
# so whatever the forwarder accepts, Kafka accepts.
DEFAULT_CHUNK_BYTES = 2 * 1024 * 1024

PRODUCER_SETTINGS = {
    "acks": "all",
    # No duplicates or reordering from the producer's own retries within a partition.
    "enable.idempotence": True,
    # Uncompressed, on purpose: the PAN scan ("no raw card number at rest") reads Kafka's
    # segment files as bytes. A service may log a card number; in an lz4 batch its digits
    # can sit split between literals (and ns timestamps' digit runs broken up the same way
    # made the scan report card-like numbers that were never there), and zstd or gzip hide
    # them entirely. Plain records keep the scan sound, for ~5x the broker's disk
    # (ttl.yaml sizes the retention for it) and no CPU spent compressing on 2 cores.
    "compression.type": "none",
    # Logs can wait 20 ms to fill a batch (alerting has seconds): fewer, bigger requests.
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "message.max.bytes": MAX_MESSAGE_BYTES,
    "queue.buffering.max.messages": 1_000_000,
    # A line that Kafka has not acknowledged in 2 minutes goes back to the disk queue: a
    # long outage parks the backlog on disk (bounded) rather than in the producer.
    "message.timeout.ms": 120_000,
    # Back within 2 s of Kafka (librdkafka's default backs off to 10 s): a backlog is waiting.
    "reconnect.backoff.max.ms": 2000,
    "client.id": "flowgate-log-forwarder",
}


@dataclass(frozen=True)
class ForwarderStats:
    received: int            # lines handed to send()
    delivered: int           # acknowledged by Kafka (each line counted once)
    dropped_lines: int       # in chunks dropped because the buffer was full
    dropped_chunks: int
    oversize_lines: int      # longer than max_line_bytes: refused, never sent
    refused_lines: int       # refused by the Kafka client for good (it can never take them)
    pending_lines: int       # accepted, not yet delivered nor dropped
    buffered_chunks: int     # chunk files on disk (waiting + being sent)
    buffered_bytes: int
    max_buffered_bytes: int  # high-water mark of the disk buffer
    limit_bytes: int
    inflight_chunks: int
    delivery_failures: int   # failed delivery reports (those lines were, or will be, re-sent)
    recovered_chunks: int    # a previous run's backlog found on disk at start
    recovered_lines: int
    kafka_errors: int        # client-level errors reported (broker down, ...)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# Delivery errors no retry can cure: the broker judged the line itself invalid (too large
# for the topic, a corrupt record). Retried, such a line would hold up every chunk behind it.
_PERMANENT = frozenset(getattr(KafkaError, name) for name in (
    "MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_MSG", "INVALID_RECORD")
    if hasattr(KafkaError, name))


class _Attempt:
    """One chunk on its way to Kafka: counts the acknowledgements of its lines."""

    __slots__ = ("chunk", "lines", "next_line", "outstanding", "acked", "failed", "forwarder")

    def __init__(self, chunk: Chunk, lines: list[bytes], forwarder: Forwarder):
        self.chunk, self.lines, self.forwarder = chunk, lines, forwarder
        self.next_line = self.outstanding = self.acked = 0
        self.failed: list[bytes] = []

    def on_delivery(self, error, message) -> None:
        self.outstanding -= 1
        if error is None:
            self.acked += 1
            self.forwarder._delivered += 1
        elif error.code() in _PERMANENT:
            self.forwarder._refused += 1
            self.forwarder._last_error = str(error)
            log.error("Kafka refused a log line of %d bytes for good: %s", len(message.value() or b""), error)
        else:
            self.failed.append(message.value())
            self.forwarder._delivery_failures += 1
            self.forwarder._last_error = str(error)

    @property
    def produced_all(self) -> bool:
        return self.next_line >= len(self.lines)

    @property
    def settled(self) -> bool:
        return self.produced_all and self.outstanding == 0


class Forwarder:
    """Ship log lines to Kafka through a bounded disk buffer. Use as a context manager,
    or call :meth:`close`; :meth:`send` and :meth:`send_many` are thread-safe."""

    def __init__(self, bootstrap: str, buffer_dir: Path | str, *, limit_bytes: int | None = None,
                 topic: str = TOPIC, chunk_bytes: int = DEFAULT_CHUNK_BYTES, flush_interval_s: float = 0.25,
                 max_inflight_chunks: int = 4, retry_backoff_s: float = 1.0, fsync: bool = True,
                 producer_settings: dict | None = None):
        if limit_bytes is None:
            from flowgate.logs.ttl import load_ttl

            limit_bytes = load_ttl().forwarder.buffer_bytes
        # The chunks in flight can never be dropped, so the limit must hold them plus the
        # one being written, or a full buffer would have nothing left to drop.
        if limit_bytes < (max_inflight_chunks + 1) * chunk_bytes:
            raise ValueError(f"limit_bytes {limit_bytes} must be >= (max_inflight_chunks + 1) x chunk_bytes "
                             f"= {(max_inflight_chunks + 1) * chunk_bytes}")
        self.topic, self.chunk_bytes, self.flush_interval_s = topic, chunk_bytes, flush_interval_s
        self.max_line_bytes = chunk_bytes - HEADER_BYTES - LINE_OVERHEAD
        self.max_inflight_chunks, self.retry_backoff_s = max_inflight_chunks, retry_backoff_s
        self.buffer = DiskBuffer(buffer_dir, limit_bytes, fsync=fsync)
        self._settings = {"bootstrap.servers": bootstrap, **PRODUCER_SETTINGS, **(producer_settings or {}),
                          "error_cb": self._on_kafka_error, "logger": logging.getLogger("flowgate.logs.rdkafka")}
        self._producer = Producer(self._settings)
        self._fatal: KafkaError | None = None
        # The open chunk: lines accepted but not yet on disk.
        self._open: list[bytes] = []
        self._open_bytes = HEADER_BYTES
        self._open_since: float | None = None
        self._seal_lock = threading.Lock()
        self._inflight: list[_Attempt] = []
        self._not_before = 0.0  # after a failed attempt, wait before sending it again
        self._received = self._delivered = self._oversize = self._refused = 0
        self._delivery_failures = self._kafka_errors = 0
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="log-forwarder", daemon=True)
        self._thread.start()

    # --- the service's side --------------------------------------------------------
    def send(self, line: bytes) -> None:
        self.send_many((line,))

    def send_many(self, lines: Iterable[bytes]) -> None:
        """Accept ``lines`` (bytes, no trailing newline needed). Never blocks on Kafka: a
        full chunk is sealed to disk here, which is the only wait (a few ms)."""
        limit, chunk_bytes = self.max_line_bytes, self.chunk_bytes
        with self._seal_lock:
            open_, size = self._open, self._open_bytes
            if self._open_since is None:
                self._open_since = time.monotonic()
            for line in lines:
                self._received += 1
                n = len(line)
                if n > limit:
                    self._oversize += 1
                    log.warning("refused a log line of %d bytes (limit %d)", n, limit)
                    continue
                if size + n + LINE_OVERHEAD > chunk_bytes:
                    self._open_bytes = size
                    self._seal_locked()
                    open_, size = self._open, self._open_bytes
                open_.append(line)
                size += n + LINE_OVERHEAD
            self._open_bytes = size

    def _seal_locked(self) -> None:
        """The open chunk to disk (caller holds the seal lock)."""
        lines, self._open = self._open, []
        self._open_bytes, self._open_since = HEADER_BYTES, None
        if lines:
            self.buffer.append(lines)

    def _seal_if_due(self) -> None:
        # Never wait for a sender that is sealing right now: it is doing this job already.
        if self._open_since is None or time.monotonic() - self._open_since < self.flush_interval_s:
            return
        if self._seal_lock.acquire(blocking=False):
            try:
                if self._open_since is not None and time.monotonic() - self._open_since >= self.flush_interval_s:
                    self._seal_locked()
            finally:
                self._seal_lock.release()

    # --- the sending thread ----------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step(poll_s=0.01)
            except Exception:  # never let the thread die: the service's lines would pile up
                log.exception("log forwarder step failed; carrying on")
                time.sleep(0.5)
        self._step(poll_s=0)

    def _step(self, poll_s: float) -> None:
        self._seal_if_due()
        if self._fatal is not None:
            self._replace_producer()
        self._dispatch()
        self._producer.poll(poll_s)
        self._settle()

    def _dispatch(self) -> None:
        """Hand chunks to the producer, oldest first, while the in-flight window has room."""
        for attempt in self._inflight:
            if not attempt.produced_all:
                self._produce(attempt)
                if not attempt.produced_all:
                    return  # the producer's queue is full: wait for it to drain
        while len(self._inflight) < self.max_inflight_chunks and time.monotonic() >= self._not_before:
            chunk = self.buffer.take_oldest()
            if chunk is None:
                return
            try:
                lines = chunk.lines_to_send()
            except (OSError, CorruptChunk) as error:
                log.error("dropping unreadable chunk %s: %s", chunk.path.name, error)
                self.buffer.discard(chunk, chunk.undelivered)
                continue
            attempt = _Attempt(chunk, lines, self)
            self._inflight.append(attempt)
            self._produce(attempt)
            if not attempt.produced_all:
                return

    def _produce(self, attempt: _Attempt) -> None:
        produce, topic, callback, lines = self._producer.produce, self.topic, attempt.on_delivery, attempt.lines
        i = attempt.next_line
        try:
            while i < len(lines):
                produce(topic, lines[i], on_delivery=callback)
                attempt.outstanding += 1
                i += 1
        except BufferError:
            pass  # local queue full; the rest goes on the next step
        except KafkaException as error:
            # Refused before it left (the client judged it invalid): it can never succeed,
            # and retrying it would block every line behind it. Counted, and passed over.
            log.error("Kafka refused a log line for good: %s", error)
            self._refused += 1
            i += 1
        finally:
            attempt.next_line = i

    def _settle(self) -> None:
        """Chunks whose every line has an outcome: delete the delivered, requeue the rest."""
        done = [a for a in self._inflight if a.settled]
        if not done:
            return
        self._inflight = [a for a in self._inflight if not a.settled]
        for attempt in done:
            if attempt.failed:
                log.warning("%d of %d lines of chunk %d undelivered (%s): queued again",
                            len(attempt.failed), len(attempt.lines), attempt.chunk.seq, self._last_error)
                self.buffer.requeue(attempt.chunk, attempt.failed)
                self._not_before = time.monotonic() + self.retry_backoff_s
            else:
                self.buffer.delivered(attempt.chunk)
        if not self._inflight and self.buffer.peek_oldest() is None:
            with self._idle:
                self._idle.notify_all()

    def _on_kafka_error(self, error: KafkaError) -> None:
        self._kafka_errors += 1
        if error.fatal():
            self._fatal = error
        elif error.code() != KafkaError._ALL_BROKERS_DOWN:
            log.info("Kafka: %s", error)

    def _replace_producer(self) -> None:
        """After a fatal error (e.g. the idempotent producer's sequence lost), a producer is
        unusable: purge it, so every line in flight gets a failure and goes back to disk,
        and start a new one."""
        log.error("Kafka producer fatal error (%s): replacing the producer", self._fatal)
        old, self._fatal = self._producer, None
        old.purge(in_queue=True, in_flight=True)
        old.flush(5)  # the purged lines' failure reports arrive here: they are queued again
        for attempt in self._inflight:
            if attempt.outstanding:
                # Reports that never came: which lines they were is unknown, so the whole
                # chunk goes again (duplicates are tolerated; ``delivered`` may then count
                # a line twice).
                attempt.failed = list(attempt.lines)
            else:
                attempt.failed.extend(attempt.lines[attempt.next_line:])
            attempt.next_line, attempt.outstanding = len(attempt.lines), 0
        self._settle()
        self._producer = Producer(self._settings)

    # --- control -----------------------------------------------------------------------
    def flush(self, timeout_s: float = 30.0) -> bool:
        """Seal the open chunk and wait until everything on disk is delivered (True) or the
        timeout passes (False; nothing is lost, it stays buffered)."""
        with self._seal_lock:
            self._seal_locked()
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._inflight or self.buffer.peek_oldest() is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.1))
        return True

    def close(self, timeout_s: float = 30.0) -> ForwarderStats:
        """Deliver what can be delivered within ``timeout_s``, then stop. Undelivered chunks
        stay on disk and are sent by the next forwarder on the same buffer directory."""
        self.flush(timeout_s)
        self._stop.set()
        self._thread.join()
        self._producer.flush(min(timeout_s, 5.0))
        return self.stats()

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stats(self) -> ForwarderStats:
        buffered = self.buffer.stats()
        dropped = buffered.dropped_lines
        settled = self._delivered + dropped + self._oversize + self._refused
        return ForwarderStats(
            received=self._received, delivered=self._delivered, dropped_lines=dropped,
            dropped_chunks=buffered.dropped_chunks, oversize_lines=self._oversize, refused_lines=self._refused,
            pending_lines=self._received + buffered.recovered_lines - settled,
            buffered_chunks=buffered.waiting_chunks + buffered.sending_chunks, buffered_bytes=buffered.used_bytes,
            max_buffered_bytes=buffered.max_used_bytes, limit_bytes=self.buffer.limit_bytes,
            inflight_chunks=len(self._inflight), delivery_failures=self._delivery_failures,
            recovered_chunks=buffered.recovered_chunks, recovered_lines=buffered.recovered_lines,
            kafka_errors=self._kafka_errors)
