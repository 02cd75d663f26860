"""A static group member (KIP-345, group.instance.id) with confluent-kafka-python (librdkafka
2.0.2), for test/compat/static-membership.test.ts.

Usage: static_member.py BOOTSTRAP GROUP TOPIC INSTANCE_ID SESSION_MS
Prints JSON lines: {"ev": "assigned" | "revoked", "partitions": [...]}. Consumes until `stop` on
stdin, then closes; a static member's close does not leave the group.
Run with /usr/bin/python3 (the Debian interpreter that has confluent_kafka).
"""

import json
import sys
import threading

from confluent_kafka import Consumer


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    bootstrap, group, topic, instance, session_ms = sys.argv[1:6]
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.instance.id": instance,
        "session.timeout.ms": int(session_ms),
        "heartbeat.interval.ms": 300,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()

    def assigned(_c, parts):
        emit({"ev": "assigned", "partitions": sorted(p.partition for p in parts)})

    def revoked(_c, parts):
        emit({"ev": "revoked", "partitions": sorted(p.partition for p in parts)})

    consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked)
    while not stop.is_set():
        consumer.poll(0.1)
    consumer.close()
    emit({"ev": "closed"})


if __name__ == "__main__":
    main()
