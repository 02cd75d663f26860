"""Drives confluent-kafka-python (Debian python3-confluent-kafka, librdkafka 2.0.2) over the
broker's secured listeners for test/compat/security-clients.test.ts.

CONFIG is a JSON object of librdkafka settings (bootstrap.servers, security.protocol, sasl.*,
ssl.*) that every client of the command gets. Each command prints one JSON object on stdout; the
TypeScript test makes the assertions. Usage:
  security_confluent_kafka.py CONFIG round-trip TOPIC PARTITIONS COUNT GROUP
      a Producer with acks=all sends record i (key k<i>, value <TOPIC>-<i>) to partition
      i % PARTITIONS; a Consumer in GROUP subscribes, reads COUNT records, commits
      synchronously and reads its committed offsets back. Stops early, with what it has, once
      librdkafka reports an authentication error.
  security_confluent_kafka.py CONFIG bad-login TOPIC
      a Producer sends one record and polls until librdkafka reports an authentication error
      through error_cb (or the deadline passes).
  security_confluent_kafka.py CONFIG refused TOPIC
      the same, for a connection the broker refuses before any request (a client certificate it
      does not trust): polls until error_cb reports _ALL_BROKERS_DOWN (or the deadline passes),
      then a second more for the errors that follow.
Run with /usr/bin/python3 (the Debian interpreter that has confluent_kafka).
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

DEADLINE_S = 20


def error_entry(err):
    return {"name": err.name(), "code": err.code(), "str": err.str()}


def authentication_failed(errors):
    return any(e["code"] == KafkaError._AUTHENTICATION for e in errors)


def round_trip(conf, topic, partitions, count, group):
    errors = []
    producer = Producer({
        **conf,
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": 5,
        "message.timeout.ms": DEADLINE_S * 1000,
        "error_cb": lambda err: errors.append(error_entry(err)),
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
        producer.produce(topic, key="k%d" % i, value="%s-%d" % (topic, i), partition=i % partitions, on_delivery=on_delivery)
        producer.poll(0)
    deadline = time.monotonic() + DEADLINE_S
    undelivered = len(producer)
    while undelivered > 0 and time.monotonic() < deadline and not authentication_failed(errors):
        undelivered = producer.flush(0.2)
    if authentication_failed(errors):
        # A refused login does not heal: report it now rather than at the deadlines.
        return {"reports": reports, "undelivered": undelivered, "errors": errors}

    assigned = []
    consumer = Consumer({
        **conf,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
        "error_cb": lambda err: errors.append(error_entry(err)),
    })
    consumer.subscribe([topic], on_assign=lambda c, tps: assigned.extend(tp.partition for tp in tps))
    records = []
    consume_errors = []
    deadline = time.monotonic() + DEADLINE_S
    while len(records) < count and time.monotonic() < deadline and not authentication_failed(errors):
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                consume_errors.append(msg.error().str())
            continue
        records.append({
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": None if msg.key() is None else msg.key().decode(),
            "value": msg.value().decode(),
        })
    committed = []
    if records:
        # Commits the consumer's position (last offset read + 1) in every assigned partition.
        consumer.commit(asynchronous=False)
        got = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        committed = [tp.offset for tp in sorted(got, key=lambda tp: tp.partition)]
    consumer.close()
    return {
        "reports": reports,
        "undelivered": undelivered,
        "assigned": sorted(assigned),
        "records": records,
        "committed": committed,
        "consume_errors": consume_errors,
        "errors": errors,
    }


def bad_login(conf, topic):
    errors = []
    reports = []
    producer = Producer({
        **conf,
        "message.timeout.ms": 10000,
        "error_cb": lambda err: errors.append(error_entry(err)),
    })
    producer.produce(topic, value="never", on_delivery=lambda err, msg: reports.append(None if err is None else err.name()))
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and not authentication_failed(errors):
        producer.poll(0.1)
    queued = len(producer)
    producer.purge()
    producer.flush(2)
    return {"errors": errors, "queued_after_error": queued, "delivery_reports": reports}


def refused(conf, topic):
    errors = []
    reports = []
    producer = Producer({
        **conf,
        "message.timeout.ms": 10000,
        "error_cb": lambda err: errors.append(error_entry(err)),
    })
    producer.produce(topic, value="never", on_delivery=lambda err, msg: reports.append(None if err is None else err.name()))
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and not any(e["code"] == KafkaError._ALL_BROKERS_DOWN for e in errors):
        producer.poll(0.1)
    producer.poll(1)
    queued = len(producer)
    producer.purge()
    producer.flush(2)
    return {"errors": errors, "queued_after_error": queued, "delivery_reports": reports}


def main():
    conf, command, args = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if command == "round-trip":
        result = round_trip(conf, args[0], int(args[1]), int(args[2]), args[3])
    elif command == "bad-login":
        result = bad_login(conf, args[0])
    elif command == "refused":
        result = refused(conf, args[0])
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
