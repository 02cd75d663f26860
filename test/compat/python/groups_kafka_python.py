"""Drives kafka-python 2.0.2 (Debian python3-kafka) for test/compat/groups-kafka-python.test.ts:
a producer with acks=all, a long-running group member with manual commits, and KafkaAdminClient's
group operations.

Usage:
  groups_kafka_python.py BOOTSTRAP produce TOPIC PARTITIONS COUNT PREFIX
      record i goes to partition i % PARTITIONS with key k<i> and value PREFIX-i; prints one
      JSON object with what each send was acknowledged with. (kafka-python 2.0.2 has no
      idempotent producer.)
  groups_kafka_python.py BOOTSTRAP member GROUP TOPIC SESSION_MS HEARTBEAT_MS
      subscribes and consumes until told `stop` on stdin; commits synchronously after each
      record until told `nocommit`. Prints JSON lines (see test/helpers/groups.ts).
  groups_kafka_python.py BOOTSTRAP admin GROUP TOPIC
      list_consumer_groups, describe_consumer_groups, list_consumer_group_offsets; prints one
      JSON object.
  groups_kafka_python.py BOOTSTRAP delete GROUP
      delete_consumer_groups, then what listing and offsets show; prints one JSON object.
Run with /usr/bin/python3 (the Debian interpreter that has the kafka package).
"""

import json
import logging
import re
import sys
import threading

import kafka.errors
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata
from kafka.coordinator.protocol import ConsumerProtocolMemberAssignment

DEADLINE_S = 30


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def produce(bootstrap, topic, partitions, count, prefix):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, retries=5, max_in_flight_requests_per_connection=1)
    futures = []
    for i in range(count):
        key, value = "k%d" % i, "%s-%d" % (prefix, i)
        futures.append((key, value, producer.send(topic, key=key.encode(), value=value.encode(), partition=i % partitions)))
    producer.flush()
    sent = []
    for key, value, future in futures:
        md = future.get(timeout=DEADLINE_S)
        sent.append({"key": key, "value": value, "partition": md.partition, "offset": md.offset})
    producer.close()
    return {"sent": sent}


class RequestVersions(logging.Handler):
    """Turns kafka-python's DEBUG request lines ("... Request 7: JoinGroupRequest_v2(...)") into request events."""

    SENT = re.compile(r"Request \d+: (\w+)Request_v(\d+)")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seen = set()

    def emit(self, record):
        m = self.SENT.search(record.getMessage())
        if m is not None and m.groups() not in self.seen:
            self.seen.add(m.groups())
            emit({"ev": "request", "api": m.group(1), "version": int(m.group(2))})


class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        emit({"ev": "revoked", "partitions": sorted(tp.partition for tp in revoked)})

    def on_partitions_assigned(self, assigned):
        emit({"ev": "assigned", "partitions": sorted(tp.partition for tp in assigned)})


def member(bootstrap, group, topic, session_ms, heartbeat_ms):
    commands = {"stop": threading.Event(), "nocommit": threading.Event()}

    def read_stdin():
        for line in sys.stdin:
            cmd = line.strip()
            if cmd in commands:
                commands[cmd].set()
        commands["stop"].set()

    threading.Thread(target=read_stdin, daemon=True).start()
    conn_log = logging.getLogger("kafka.conn")
    conn_log.setLevel(logging.DEBUG)
    conn_log.addHandler(RequestVersions())
    conn_log.propagate = False
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="compat-group-member",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=heartbeat_ms,
        fetch_max_wait_ms=100,
        max_poll_records=20,
    )
    consumer.subscribe([topic], listener=Listener())
    nocommit_acked = False
    while not commands["stop"].is_set():
        if commands["nocommit"].is_set() and not nocommit_acked:
            nocommit_acked = True
            emit({"ev": "nocommit"})
        for tp, records in consumer.poll(timeout_ms=100).items():
            for r in records:
                emit({
                    "ev": "record",
                    "partition": tp.partition,
                    "offset": r.offset,
                    "key": None if r.key is None else r.key.decode(),
                    "value": r.value.decode(),
                })
                if commands["nocommit"].is_set():
                    continue
                try:
                    consumer.commit({tp: OffsetAndMetadata(r.offset + 1, None)})
                    emit({"ev": "committed", "partition": tp.partition, "offset": r.offset + 1})
                except kafka.errors.KafkaError as e:
                    emit({"ev": "error", "error": "commit: %r" % (e,)})
    consumer.close(autocommit=False)
    emit({"ev": "log", "text": "closed"})
    return None


def admin(bootstrap, group, topic):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    out = {"listed": sorted([g[0], g[1]] for g in client.list_consumer_groups())}
    described = client.describe_consumer_groups([group])
    out["described"] = []
    for g in described:
        members = []
        for m in g.members:
            # kafka-python decodes the assignment itself when the protocol type is "consumer".
            assignment = m.member_assignment
            if isinstance(assignment, bytes):
                assignment = ConsumerProtocolMemberAssignment.decode(assignment)
            members.append({
                "member_id": m.member_id,
                "client_id": m.client_id,
                "assignment": {t: sorted(ps) for t, ps in assignment.assignment},
            })
        out["described"].append({
            "group": g.group,
            "error_code": g.error_code,
            "state": g.state,
            "protocol_type": g.protocol_type,
            "protocol": g.protocol,
            "members": members,
        })
    offsets = client.list_consumer_group_offsets(group)
    out["offsets"] = {str(tp.partition): om.offset for tp, om in offsets.items() if tp.topic == topic}
    client.close()
    return out


def delete(bootstrap, group):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    # Each result is (group, error class): NoError, or why the group was not deleted.
    out = {"deleted": [[g, e.__name__] for g, e in client.delete_consumer_groups([group])]}
    out["delete_again"] = [[g, e.__name__] for g, e in client.delete_consumer_groups([group])]
    out["listed_after"] = group in [g[0] for g in client.list_consumer_groups()]
    out["offsets_after"] = len(client.list_consumer_group_offsets(group))
    client.close()
    return out


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    bootstrap, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "produce":
        result = produce(bootstrap, args[0], int(args[1]), int(args[2]), args[3])
    elif command == "member":
        result = member(bootstrap, args[0], args[1], int(args[2]), int(args[3]))
    elif command == "admin":
        result = admin(bootstrap, args[0], args[1])
    elif command == "delete":
        result = delete(bootstrap, args[0])
    else:
        raise SystemExit("unknown command " + command)
    if result is not None:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
