"""The stream's Kafka output: decisions and dead letters, sent from the driver.

One producer for the stream's life. ``flush`` waits for the broker's acks before the
micro-batch returns, so Spark commits a batch's offsets only after its decisions are
durable on the topic (at least once; a replayed batch re-sends them, see store.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import KafkaException, Producer

from flowgate.fraud.events import DeadLetter
from flowgate.fraud.pipeline import decision_message


class KafkaPublisher:
    def __init__(self, bootstrap: str, decisions_topic: str, dead_letter_topic: str):
        self.decisions_topic, self.dead_letter_topic = decisions_topic, dead_letter_topic
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 1,  # the batch is sent at once anyway; do not wait to fill it
            "client.id": "flowgate-fraud-stream",
        })
        self._errors: list[str] = []

    def _on_delivery(self, error, _message) -> None:
        if error is not None:
            self._errors.append(str(error))

    def send_decisions(self, decisions: Sequence[dict]) -> None:
        for decision in decisions:
            self._produce(self.decisions_topic, str(decision["transaction_id"]), decision_message(decision))

    def send_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            self._produce(self.dead_letter_topic, f"{letter.partition}:{letter.offset}", letter.to_json())

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key.encode(), value=value, on_delivery=self._on_delivery)
                return
            except BufferError:  # local queue full: let it drain, then retry
                self.producer.poll(0.05)

    def flush(self, timeout_s: float = 30.0) -> None:
        remaining = self.producer.flush(timeout_s)
        errors, self._errors = self._errors, []
        if remaining or errors:
            # Failing the batch makes Spark retry it from the checkpoint: nothing is lost.
            raise KafkaException(f"{remaining} message(s) unsent, delivery errors: {errors[:3]}")
