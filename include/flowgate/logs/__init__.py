"""Flow 4, application logs: services -> forwarder -> Kafka ``app.logs`` -> lake, search, alerts.

This package holds the sources' side: the log record (OpenTelemetry log data model,
one JSON object per line), the load generator that plays the platform's microservices,
the local forwarder with its bounded disk buffer (Fluent Bit's role in Docker), and the
one place for every TTL (``ttl.yaml``).
"""

# The topic every log line goes to, and the largest message it takes: above the largest
# line the forwarder accepts (a 1 MiB body must reach the lake as it was, not be refused).
TOPIC = "app.logs"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
