"""Drives kafka-python 2.0.2 (Debian python3-kafka) for test/compat/kafka-python.test.ts.

Each command does one scenario and prints a single JSON object on stdout; the TypeScript test
makes the assertions. Usage:
  kafka_python_client.py BOOTSTRAP produce TOPIC COUNT COMPRESSION PARTITIONS  (PARTITIONS 0: auto-create)
  kafka_python_client.py BOOTSTRAP consume TOPIC PARTITIONS EXPECTED
  kafka_python_client.py BOOTSTRAP admin TOPIC
  kafka_python_client.py - codecs
Run with /usr/bin/python3 (the Debian interpreter that has the kafka package).
"""

import json
import logging
import sys
import time

import kafka
import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.codec import has_gzip, has_lz4, has_snappy, has_zstd
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

DEADLINE_S = 20


def produce(bootstrap, topic, count, compression, partitions):
    if partitions > 0:
        client = KafkaAdminClient(bootstrap_servers=bootstrap)
        client.create_topics([NewTopic(topic, partitions, 1)])
        client.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=None if compression == "none" else compression,
        linger_ms=20,
        retries=0,
        max_in_flight_requests_per_connection=1,
    )
    futures = []
    for i in range(count):
        key = "key-%d" % (i % 7)
        value = "%s-value-%d-%s" % (compression, i, "z" * (i % 50))
        futures.append((key, value, producer.send(topic, key=key.encode(), value=value.encode())))
    producer.flush()
    sent = []
    for key, value, future in futures:
        md = future.get(timeout=DEADLINE_S)
        sent.append({"key": key, "value": value, "partition": md.partition, "offset": md.offset})
    api_version = producer.config["api_version"]
    producer.close()
    return {"sent": sent, "api_version": list(api_version)}


def consume(bootstrap, topic, partitions, expected):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
        fetch_max_wait_ms=100,
    )
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < expected and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            for r in records:
                got.append({
                    "partition": tp.partition,
                    "offset": r.offset,
                    "key": None if r.key is None else r.key.decode(),
                    "value": r.value.decode(),
                    "timestamp": r.timestamp,
                })
    # Anything past the expected count would be a duplicate: poll once more to catch it.
    for tp, records in consumer.poll(timeout_ms=300).items():
        for r in records:
            got.append({"partition": tp.partition, "offset": r.offset, "key": None, "value": r.value.decode(), "timestamp": r.timestamp})
    end = consumer.end_offsets(tps)
    consumer.close()
    return {"records": got, "end_offsets": {str(tp.partition): o for tp, o in end.items()}}


def admin(bootstrap, topic):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    out = {"api_versions": {}}
    create = client.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "3600000"})])
    out["api_versions"]["create_topics"] = create.API_VERSION
    out["create"] = [[t[0], t[1]] for t in create.topic_errors]
    try:
        client.create_topics([NewTopic(topic, 2, 1)])
        out["create_again"] = "no error"
    except kafka.errors.TopicAlreadyExistsError as e:
        out["create_again"] = e.errno
    out["listed_after_create"] = topic in client.list_topics()
    described = client.describe_topics([topic])
    out["describe_topics"] = [
        {"topic": t["topic"], "error_code": t["error_code"], "partitions": sorted(p["partition"] for p in t["partitions"])}
        for t in described
    ]
    parts = client.create_partitions({topic: NewPartitions(total_count=4)})
    out["api_versions"]["create_partitions"] = parts.API_VERSION
    out["create_partitions"] = [[t[0], t[1]] for t in parts.topic_errors]
    out["partitions_after"] = sorted(p["partition"] for p in client.describe_topics([topic])[0]["partitions"])
    configs = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    out["api_versions"]["describe_configs"] = configs[0].API_VERSION
    resources = configs[0].to_object()["resources"]
    out["describe_configs"] = [
        {
            "error_code": r["error_code"],
            "resource_name": r["resource_name"],
            "configs": {c["config_names"]: c["config_value"] for c in r["config_entries"]},
        }
        for r in resources
    ]
    broker_configs = client.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0", configs={"message.max.bytes": None})])
    out["describe_broker_configs"] = [
        {"error_code": r["error_code"], "configs": {c["config_names"]: c["config_value"] for c in r["config_entries"]}}
        for r in broker_configs[0].to_object()["resources"]
    ]
    delete = client.delete_topics([topic])
    out["api_versions"]["delete_topics"] = delete.API_VERSION
    out["delete"] = [[t[0], t[1]] for t in delete.topic_error_codes]
    out["listed_after_delete"] = topic in client.list_topics()
    client.close()
    return out


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    bootstrap, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "produce":
        result = produce(bootstrap, args[0], int(args[1]), args[2], int(args[3]))
    elif command == "consume":
        result = consume(bootstrap, args[0], int(args[1]), int(args[2]))
    elif command == "admin":
        result = admin(bootstrap, args[0])
    elif command == "codecs":
        result = {"version": kafka.__version__, "gzip": has_gzip(), "snappy": has_snappy(), "lz4": has_lz4(), "zstd": has_zstd()}
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
