"""An idempotent confluent-kafka-python producer (Debian python3-confluent-kafka, librdkafka
2.0.2) for test/compat/idempotence.test.ts.

Usage: idempotent_producer.py BOOTSTRAP TOPIC COUNT PARTITIONS
Produces COUNT messages (message i to partition i % PARTITIONS) with enable.idempotence=true and
prints one JSON object: the delivery reports in send order, undelivered count, and librdkafka's log
lines about producer id changes, epoch bumps and fatal idempotence errors. Run with /usr/bin/python3.
"""

import json
import logging
import sys

from confluent_kafka import Producer

DEADLINE_S = 40


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main():
    bootstrap, topic, count, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    capture = LogCapture()
    logger = logging.getLogger("rdkafka-idempotent")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 2,
        "batch.num.messages": 10,
        "message.timeout.ms": DEADLINE_S * 1000,
        "retry.backoff.ms": 20,
        "reconnect.backoff.ms": 20,
        "debug": "eos",
    }, logger=logger)
    reports = []

    def on_delivery(err, msg):
        reports.append({
            "error": None if err is None else err.str(),
            "value": msg.value().decode(),
            "partition": msg.partition(),
            "offset": msg.offset(),
        })

    for i in range(count):
        producer.produce(topic, value="cfk-%d" % i, partition=i % partitions, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(DEADLINE_S)
    # Epoch bumps, PID resets and fatal idempotence errors, if librdkafka saw a reason for any.
    eos = [l for l in capture.lines if any(w in l for w in ("bump", "Bump", "DRAIN", "FATAL", "fatal", "changed PID"))]
    print(json.dumps({"reports": reports, "undelivered": remaining, "eos_log": eos[-20:]}))


if __name__ == "__main__":
    main()
