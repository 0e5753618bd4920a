"""Flow 1 — fraud detection: payment events → Kafka → Spark Structured Streaming →
tokenization → features + model → decision, exactly once per transaction id.

Modules (one job each):
- ``pan``           synthetic PANs (generated at run time only) and the Luhn rule.
- ``envelope``      the public-key envelope the gateway seals a PAN in; only the
                    tokenization service holds the private key that opens it.
- ``gateway``       the payment-gateway simulator (load generator, labelled fraud mix).
- ``features``      pure pandas feature functions shared by training and streaming.
- ``model``         training, the safe (JSON) model format, scoring and reason codes.
- ``tokenizer_client``  the stream's client of the tokenization service, behind a
                    circuit breaker.
- ``policy``        what to decide when the tokenizer is unavailable (fail-open below an
                    amount threshold, fail-closed above it).
- ``events``        parsing and validation of raw gateway events (malformed → dead letter).
- ``store``         ``fraud.decisions`` (primary key ``transaction_id``) and the per-card
                    activity the velocity features read; written idempotently.
- ``pipeline``      one micro-batch, end to end, as plain functions the Spark job calls.

The event on ``payments.events`` (JSON, key = transaction_id; never a clear PAN):
    {"schema_version": 1, "transaction_id": "<uuid4>",
     "event_time": "2026-11-29T05:42:41.123Z", "amount": "123.45", "currency": "EUR",
     "merchant_id": "m_000123", "mcc": "5411",
     "merchant_country": "DE", "card_country": "DE", "channel": "ecom|pos|atm",
     "pan_envelope": "<sealed PAN, see envelope.py>"}
The amount is a decimal string with two places. When the gateway produced the event is
the Kafka message timestamp (CreateTime), not a field: events can then be sealed and
serialised before a timed run, and the broker's clock is the one latency is measured on.
"""
