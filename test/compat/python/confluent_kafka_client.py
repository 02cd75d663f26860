"""Drives confluent-kafka-python (Debian python3-confluent-kafka, librdkafka 2.0.2) for
test/compat/confluent-kafka.test.ts.

Each command does one scenario and prints a single JSON object on stdout; the TypeScript test
makes the assertions. Usage:
  confluent_kafka_client.py BOOTSTRAP produce TOPIC COUNT COMPRESSION PARTITION
  confluent_kafka_client.py BOOTSTRAP consume TOPIC PARTITIONS EXPECTED
  confluent_kafka_client.py BOOTSTRAP admin TOPIC
Run with /usr/bin/python3 (the Debian interpreter that has confluent_kafka).
"""

import json
import logging
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

DEADLINE_S = 20


class LogCapture(logging.Handler):
    """Collects librdkafka's log lines (debug contexts set per client)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def produce(bootstrap, topic, count, compression, partition):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "compression.type": compression,
        "linger.ms": 20,
        "message.timeout.ms": DEADLINE_S * 1000,
    })
    reports = []

    def on_delivery(err, msg):
        reports.append({
            "error": None if err is None else err.str(),
            "key": msg.key().decode(),
            "value": msg.value().decode(),
            "partition": msg.partition(),
            "offset": msg.offset(),
        })

    for i in range(count):
        key = "key-%d" % (i % 5)
        value = "%s-value-%d-%s" % (compression, i, "q" * (i % 64))
        if partition >= 0:
            producer.produce(topic, key=key, value=value, partition=partition, on_delivery=on_delivery)
        else:
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(DEADLINE_S)
    return {"reports": reports, "undelivered": remaining}


def consume(bootstrap, topic, partitions, expected):
    capture = LogCapture()
    logger = logging.getLogger("rdkafka-consumer")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        # librdkafka requires a group.id for its KafkaConsumer even when only assign() is used.
        "group.id": "compat-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 100,
        "debug": "cgrp,protocol",
    }, logger=logger)
    # Explicit offsets: no stored/committed offset is needed from a coordinator.
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    eof = set()
    errors = []
    deadline = time.monotonic() + DEADLINE_S
    while (len(got) < expected or len(eof) < partitions) and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
            else:
                errors.append(msg.error().str())
            continue
        eof.discard(msg.partition())
        got.append({
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": None if msg.key() is None else msg.key().decode(),
            "value": msg.value().decode(),
            "timestamp": msg.timestamp()[1],
        })
    # ListOffsets earliest/latest, and by timestamp (0: the first message of each partition).
    watermarks = {str(p): list(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)) for p in range(partitions)}
    by_time = consumer.offsets_for_times([TopicPartition(topic, p, 0) for p in range(partitions)], timeout=10)
    consumer.close()
    sent = [l for l in capture.lines if " Sent " in l]
    return {
        "records": got,
        "errors": errors,
        "eof_partitions": sorted(eof),
        "watermarks": watermarks,
        "offsets_for_times_0": {str(tp.partition): tp.offset for tp in by_time},
        # Which request types the consumer sent, e.g. to see whether it looked for a group coordinator.
        "requests_sent": sorted({l.split(" Sent ")[1].split(" ")[0] for l in sent}),
    }


def admin(bootstrap, topic):
    client = AdminClient({"bootstrap.servers": bootstrap})
    out = {}
    futures = client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1, config={"retention.ms": "7200000"})], operation_timeout=10)
    futures[topic].result()
    out["created"] = True
    try:
        client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result()
        out["create_again"] = "no error"
    except confluent_kafka.KafkaException as e:
        out["create_again"] = e.args[0].name()
    md = client.list_topics(timeout=10)
    out["brokers"] = {str(b.id): [b.host, b.port] for b in md.brokers.values()}
    out["controller_id"] = md.controller_id
    out["partitions_after_create"] = sorted(md.topics[topic].partitions.keys())
    client.create_partitions([NewPartitions(topic, 5)], operation_timeout=10)[topic].result()
    md = client.list_topics(topic=topic, timeout=10)
    out["partitions_after_create_partitions"] = sorted(md.topics[topic].partitions.keys())
    out["leaders"] = sorted({p.leader for p in md.topics[topic].partitions.values()})
    resource = ConfigResource("topic", topic)
    entries = client.describe_configs([resource])[resource].result()
    out["configs"] = {name: {"value": e.value, "is_default": e.is_default} for name, e in entries.items()}
    broker_resource = ConfigResource("broker", "0")
    broker_entries = client.describe_configs([broker_resource])[broker_resource].result()
    out["broker_configs"] = {name: e.value for name, e in broker_entries.items()}
    client.delete_topics([topic], operation_timeout=10)[topic].result()
    out["listed_after_delete"] = topic in client.list_topics(timeout=10).topics
    return out


def main():
    bootstrap, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "produce":
        result = produce(bootstrap, args[0], int(args[1]), args[2], int(args[3]))
    elif command == "consume":
        result = consume(bootstrap, args[0], int(args[1]), int(args[2]))
    elif command == "admin":
        result = admin(bootstrap, args[0])
    elif command == "versions":
        result = {"confluent_kafka": confluent_kafka.version()[0], "librdkafka": confluent_kafka.libversion()[0]}
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
