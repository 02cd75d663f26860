"""Drives kafka-python 2.0.2 (Debian python3-kafka) for test/compat/burrow.test.ts: the topic and
the consumer group whose lag Burrow reports. Usage:
  burrow_group.py BOOTSTRAP produce TOPIC PARTITIONS COUNT
      Creates TOPIC with PARTITIONS partitions if it does not exist, then appends COUNT records
      to every partition; prints {"produced": COUNT}.
  burrow_group.py BOOTSTRAP member GROUP TOPIC CLIENT_ID
      Joins GROUP subscribed to TOPIC and prints {"assigned": [partitions]} once it holds them.
      Then reads commands from stdin, one a line, and answers each with one JSON line:
        commit N  -> commits offset N for every assigned partition: {"committed": {partition: N}}
        close     -> leaves the group: {"closed": true}, and exits
  burrow_group.py BOOTSTRAP commit GROUP TOPIC PARTITIONS N
      Commits offset N for partitions 0..PARTITIONS-1 without joining the group (manual
      assignment, generation -1), as a standalone consumer; prints {"committed": {partition: N}}.
Run with /usr/bin/python3 (the Debian interpreter that has the kafka package).
"""

import json
import sys
import time

import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

DEADLINE_S = 20


def out(obj):
    print(json.dumps(obj), flush=True)


def produce(bootstrap, topic, partitions, count):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except kafka.errors.TopicAlreadyExistsError:
        pass
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = [producer.send(topic, value=b"record-%d" % i, partition=p) for p in range(partitions) for i in range(count)]
    producer.flush()
    for f in futures:
        f.get(timeout=DEADLINE_S)
    producer.close()
    out({"produced": count})


def committed_all(consumer, tps, offset):
    consumer.commit({tp: OffsetAndMetadata(offset, "") for tp in tps})
    return {str(tp.partition): consumer.committed(tp) for tp in tps}


def member(bootstrap, group, topic, client_id):
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=1,
    )
    deadline = time.monotonic() + DEADLINE_S
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise SystemExit("no assignment within %ds" % DEADLINE_S)
        consumer.poll(timeout_ms=100)
    tps = sorted(consumer.assignment(), key=lambda tp: tp.partition)
    out({"assigned": [tp.partition for tp in tps]})
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["commit"]:
            out({"committed": committed_all(consumer, tps, int(words[1]))})
        elif words[:1] == ["close"]:
            break
    consumer.close()
    out({"closed": True})


def commit(bootstrap, group, topic, partitions, offset):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    got = committed_all(consumer, tps, offset)
    consumer.close()
    out({"committed": got})


def main():
    bootstrap, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "produce":
        produce(bootstrap, args[0], int(args[1]), int(args[2]))
    elif cmd == "member":
        member(bootstrap, args[0], args[1], args[2])
    elif cmd == "commit":
        commit(bootstrap, args[0], args[1], int(args[2]), int(args[3]))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
