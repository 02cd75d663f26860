"""Drives kafka-python 2.0.2 (Debian python3-kafka) against a broker with ACLs (authorizer.class.name
set) for test/compat/acl-clients.test.ts.

CONFIG is a JSON object of keyword arguments every client of the command gets (bootstrap_servers,
security_protocol, sasl_mechanism, sasl_plain_username, sasl_plain_password). Each command prints
one JSON object on stdout; the TypeScript test makes the assertions. Exceptions the client raises
are reported as {"type": class name, "args": [...]} rather than raised. Usage:
  acl_kafka_python.py CONFIG produce MAX_BLOCK_MS TOPIC:COUNT [TOPIC:COUNT...]
      one KafkaProducer (acks=all, max_block_ms=MAX_BLOCK_MS) sends, for each TOPIC in turn,
      record i (key k<i>, value <TOPIC>-<i>) to partition 0, and reports per topic each record's
      partition and offset, or the exception send() raised (and how long it took); plus the
      [topic, error code] pairs of every Metadata response the client received.
  acl_kafka_python.py CONFIG consume TOPIC GROUP
      a KafkaConsumer in GROUP subscribes to TOPIC and reads partition 0 to its end offset (taken
      before reading), commits synchronously and reports the records and its committed offset; or
      the exception poll() raised.
Run with /usr/bin/python3 (the Debian interpreter that has the kafka package).
"""

import json
import logging
import sys
import time

import kafka.errors
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.cluster import ClusterMetadata

DEADLINE_S = 15


def exception_entry(e):
    return {"type": type(e).__name__, "args": [str(a) for a in e.args]}


def record_metadata_errors():
    """
    Every topic error code in the MetadataResponses the client handles, as [topic, code] pairs:
    ClusterMetadata.update_metadata wrapped, since kafka-python 2.0.2 drops the error of a
    single-topic response without surfacing it (dpkp/kafka-python#2078).
    """
    seen = []
    original = ClusterMetadata.update_metadata

    def update_metadata(self, metadata):
        for t in metadata.topics:
            if t[0] != 0:
                seen.append([t[1], t[0]])
        return original(self, metadata)

    ClusterMetadata.update_metadata = update_metadata
    return seen


def produce(conf, max_block_ms, batches):
    """batches: [(topic, count)], sent in turn by one producer, each flushed before the next."""
    metadata_errors = record_metadata_errors()
    producer = KafkaProducer(acks="all", linger_ms=5, retries=0, max_block_ms=max_block_ms, **conf)
    results = []
    for topic, count in batches:
        sent = []
        exception = None
        started = time.monotonic()
        try:
            futures = []
            for i in range(count):
                key, value = "k%d" % i, "%s-%d" % (topic, i)
                futures.append((key, value, producer.send(topic, key=key.encode(), value=value.encode(), partition=0)))
            producer.flush(DEADLINE_S)
            for key, value, future in futures:
                md = future.get(timeout=DEADLINE_S)
                sent.append({"key": key, "value": value, "partition": md.partition, "offset": md.offset})
        except kafka.errors.KafkaError as e:
            exception = exception_entry(e)
        results.append({"topic": topic, "sent": sent, "exception": exception,
                        "seconds": round(time.monotonic() - started, 2)})
    producer.close(timeout=5)
    return {"results": results, "metadata_errors": metadata_errors}


def consume(conf, topic, group):
    consumer = KafkaConsumer(group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=100, **conf)
    tp = TopicPartition(topic, 0)
    consumer.subscribe([topic])
    records = []
    exception = None
    end = None
    committed = None
    deadline = time.monotonic() + DEADLINE_S
    try:
        end = consumer.end_offsets([tp])[tp]
        while time.monotonic() < deadline and (not records or records[-1]["offset"] < end - 1):
            for part, batch in consumer.poll(timeout_ms=200).items():
                for r in batch:
                    records.append({
                        "partition": part.partition,
                        "offset": r.offset,
                        "key": None if r.key is None else r.key.decode(),
                        "value": r.value.decode(),
                    })
        if records:
            consumer.commit()
            committed = consumer.committed(tp)
    except kafka.errors.KafkaError as e:
        exception = exception_entry(e)
    consumer.close(autocommit=False)
    return {"end": end, "records": records, "committed": committed, "exception": exception}


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    conf, command, args = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if command == "produce":
        result = produce(conf, int(args[0]), [(b.rsplit(":", 1)[0], int(b.rsplit(":", 1)[1])) for b in args[1:]])
    elif command == "consume":
        result = consume(conf, args[0], args[1])
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
