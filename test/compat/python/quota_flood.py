"""A confluent-kafka-python (librdkafka 2.0.2) producer flooding one topic for
test/broker/security/quotas-wire.test.ts: it produces VALUE_BYTES-byte records as fast as
librdkafka takes them for SECONDS (then flushes), with client.id CLIENT_ID, and prints one JSON
object: the bytes delivered, the seconds until the last was delivered, and the throttle times
librdkafka reported through throttle_cb (the broker's throttle_time_ms, KIP-219). Usage:
  quota_flood.py BOOTSTRAP TOPIC CLIENT_ID SECONDS VALUE_BYTES
Run with /usr/bin/python3 (the Debian interpreter that has confluent_kafka).
"""

import json
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, client_id, seconds, value_bytes = sys.argv[1:6]
    throttles = []
    delivered = [0]
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err.str())
        else:
            delivered[0] += len(msg.value())

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "acks": "all",
        "linger.ms": 5,
        # At most 512 KB waiting in librdkafka: the flood is bounded by the quota, not by memory.
        "queue.buffering.max.kbytes": 512,
        "throttle_cb": lambda event: throttles.append(event.throttle_time * 1000),
    })
    value = b"q" * int(value_bytes)
    started = time.monotonic()
    while time.monotonic() - started < float(seconds):
        try:
            producer.produce(topic, value, on_delivery=on_delivery)
        except BufferError:
            pass
        producer.poll(0.01)
    producer.flush(30)
    # Until the last record is delivered: what the producer got through, queue included.
    elapsed = time.monotonic() - started
    print(json.dumps({"delivered": delivered[0], "seconds": elapsed, "throttles_ms": throttles, "errors": errors[:5]}))


main()
