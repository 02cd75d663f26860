"""Drives confluent-kafka-python (Debian python3-confluent-kafka, librdkafka 2.0.2) for
test/compat/groups-confluent-kafka.test.ts: a producer with acks=all, a long-running group member
with manual commits, and the AdminClient's group listing.

Usage:
  groups_confluent_kafka.py BOOTSTRAP produce TOPIC PARTITIONS COUNT PREFIX IDEMPOTENT
      record i goes to partition i % PARTITIONS with key k<i> and value PREFIX-i; prints one
      JSON object with the delivery reports.
  groups_confluent_kafka.py BOOTSTRAP member GROUP TOPIC SESSION_MS HEARTBEAT_MS
      subscribes and consumes until told `stop` on stdin; commits each record synchronously
      after "processing" it (printing it) until told `nocommit`. Prints JSON lines (see
      test/helpers/groups.ts).
  groups_confluent_kafka.py BOOTSTRAP admin GROUP TOPIC PARTITIONS
      AdminClient.list_groups (ListGroups + DescribeGroups) and the group's committed offsets
      (Consumer.committed, OffsetFetch); prints one JSON object.
Run with /usr/bin/python3 (the Debian interpreter that has confluent_kafka).
"""

import json
import logging
import re
import sys
import threading

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

DEADLINE_S = 30


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class RequestVersions(logging.Handler):
    """Turns librdkafka's debug=protocol lines ("Sent JoinGroupRequest (v5, ...") into request events."""

    SENT = re.compile(r"Sent (\w+)Request \(v(\d+)")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seen = set()

    def emit(self, record):
        m = self.SENT.search(record.getMessage())
        if m is not None and m.groups() not in self.seen:
            self.seen.add(m.groups())
            emit({"ev": "request", "api": m.group(1), "version": int(m.group(2))})


def produce(bootstrap, topic, partitions, count, prefix, idempotent):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": idempotent,
        "linger.ms": 5,
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
        producer.produce(topic, key="k%d" % i, value="%s-%d" % (prefix, i), partition=i % partitions, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(DEADLINE_S)
    return {"reports": reports, "undelivered": remaining}


def member(bootstrap, group, topic, session_ms, heartbeat_ms):
    commands = {"stop": threading.Event(), "nocommit": threading.Event()}

    def read_stdin():
        for line in sys.stdin:
            cmd = line.strip()
            if cmd in commands:
                commands[cmd].set()
        commands["stop"].set()  # stdin closed: the test is gone

    threading.Thread(target=read_stdin, daemon=True).start()

    def on_error(err):
        # Transport errors while the broker restarts are expected; librdkafka recovers on its own.
        emit({"ev": "log", "text": "error_cb: " + err.str()})

    logger = logging.getLogger("rdkafka-member")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(RequestVersions())
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": "compat-group-member",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": heartbeat_ms,
        "fetch.wait.max.ms": 100,
        "error_cb": on_error,
        "debug": "protocol",
    }, logger=logger)

    def on_assign(c, partitions):
        emit({"ev": "assigned", "partitions": sorted(tp.partition for tp in partitions)})

    def on_revoke(c, partitions):
        emit({"ev": "revoked", "partitions": sorted(tp.partition for tp in partitions)})

    def on_lost(c, partitions):
        emit({"ev": "revoked", "partitions": sorted(tp.partition for tp in partitions), "lost": True})

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    nocommit_acked = False
    while not commands["stop"].is_set():
        if commands["nocommit"].is_set() and not nocommit_acked:
            nocommit_acked = True
            emit({"ev": "nocommit"})
        msg = consumer.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            code = msg.error().code()
            if code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                # Informational while the broker restarts; librdkafka reconnects by itself.
                emit({"ev": "log", "text": "consume: " + msg.error().str()})
            elif code != KafkaError._PARTITION_EOF:
                emit({"ev": "error", "error": "consume: " + msg.error().str()})
            continue
        emit({
            "ev": "record",
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": None if msg.key() is None else msg.key().decode(),
            "value": msg.value().decode(),
        })
        if commands["nocommit"].is_set():
            continue
        try:
            # Commits msg.offset() + 1 and waits for the broker's answer.
            for tp in consumer.commit(message=msg, asynchronous=False):
                if tp.error is not None:
                    emit({"ev": "error", "error": "commit %d: %s" % (tp.partition, tp.error.str())})
                else:
                    emit({"ev": "committed", "partition": tp.partition, "offset": tp.offset})
        except KafkaException as e:
            emit({"ev": "error", "error": "commit: " + str(e)})
    consumer.close()
    emit({"ev": "log", "text": "closed"})
    return None


def admin(bootstrap, group, topic, partitions):
    client = AdminClient({"bootstrap.servers": bootstrap})
    listed = client.list_groups(timeout=10)
    mine = client.list_groups(group=group, timeout=10)
    out = {
        "listed": sorted(g.id for g in listed),
        "groups": [{
            "id": g.id,
            "error": None if g.error is None else g.error.str(),
            "state": g.state,
            "protocol_type": g.protocol_type,
            "protocol": g.protocol,
            "members": [{"id": m.id, "client_id": m.client_id, "client_host": m.client_host} for m in g.members],
        } for g in mine],
    }
    # OffsetFetch through a consumer of the group that never joins it.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    out["committed"] = [tp.offset for tp in sorted(committed, key=lambda tp: tp.partition)]
    consumer.close()
    return out


def main():
    bootstrap, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "produce":
        result = produce(bootstrap, args[0], int(args[1]), int(args[2]), args[3], args[4] == "true")
    elif command == "member":
        result = member(bootstrap, args[0], args[1], int(args[2]), int(args[3]))
    elif command == "admin":
        result = admin(bootstrap, args[0], args[1], int(args[2]))
    else:
        raise SystemExit("unknown command " + command)
    if result is not None:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
