"""Prometheus metrics of the MQTT ingest (served on the API's /metrics with the rest).

``bss_mqtt_messages_total{topic,result}``: topic is the inbound topic without
``bss/{s}/`` (``swap/initiate``; ``unknown`` otherwise), result one of accepted, refused,
rejected, duplicate. ``bss_mqtt_rejected_total{reason}`` counts rejected messages by reason
code; ``bss_mqtt_ingest_rate`` is messages handled per second over the last 10 s.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "bss_mqtt_messages", "Station messages handled, by topic and result.", ["topic", "result"]
)
REJECTED = Counter("bss_mqtt_rejected", "Station messages rejected, by reason code.", ["reason"])
INGEST_RATE = Gauge(
    "bss_mqtt_ingest_rate", "Station messages handled per second over the last 10 seconds."
)
REPLY_LATENCY = Histogram(
    "bss_mqtt_reply_latency_seconds",
    "From a message's arrival to its reply being handed to the MQTT client.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("bss_mqtt_queue_depth", "Messages received and not yet in a batch.")
DB_RETRIES = Counter(
    "bss_mqtt_db_retries", "Batches tried again because the database was unavailable."
)
CONNECTED = Gauge("bss_mqtt_connected", "1 while the ingest is connected to the broker.")
