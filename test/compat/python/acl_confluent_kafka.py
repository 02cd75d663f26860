"""Drives confluent-kafka-python (Debian python3-confluent-kafka, librdkafka 2.0.2) against a broker
with ACLs (authorizer.class.name set) for test/compat/acl-clients.test.ts.

CONFIG is a JSON object of librdkafka settings (bootstrap.servers, security.protocol, sasl.*) that
every client of the command gets. Each command prints one JSON object on stdout (the last line);
the TypeScript test makes the assertions. Usage:
  acl_confluent_kafka.py CONFIG produce TOPIC COUNT IDEMPOTENT
      a Producer with acks=all (and enable.idempotence=IDEMPOTENT, "true"/"false") sends records
      k<i>/<TOPIC>-<i> to partition 0 and reports each delivery (error name or partition/offset),
      plus the errors error_cb saw and the fatal error flush() raised (a refused InitProducerId).
  acl_confluent_kafka.py CONFIG consume TOPIC GROUP [committed-before]
      a Consumer in GROUP subscribes to TOPIC, reads partition 0 to its end (stopping at the first
      consumer error), commits synchronously and reads its committed offset back; with
      committed-before it first reads the group's committed offset (where reading should start).
  acl_confluent_kafka.py CONFIG produce-twice TOPIC
      one Producer sends a record (acks=all), prints {"ev":"first",...}, waits for a line on
      stdin, then sends a second record on the same connection and metadata, and prints the
      result: what the broker answers a client it already let write, once the ACLs changed.
Run with /usr/bin/python3 (the Debian interpreter that has confluent_kafka).
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

DEADLINE_S = 15


def error_entry(err):
    return {"name": err.name(), "code": err.code(), "str": err.str(), "fatal": err.fatal()}


def delivery_entry(err, msg):
    if err is not None:
        return {"error": err.name(), "code": err.code(), "str": err.str(), "value": msg.value().decode()}
    return {"error": None, "value": msg.value().decode(), "partition": msg.partition(), "offset": msg.offset()}


def new_producer(conf, errors, idempotent):
    return Producer({
        **conf,
        "acks": "all",
        "enable.idempotence": idempotent,
        "linger.ms": 5,
        "message.timeout.ms": DEADLINE_S * 1000,
        "error_cb": lambda err: errors.append(error_entry(err)),
    })


def flush(producer, errors):
    """
    Flushes until nothing is queued, a fatal error is reported, or the deadline passes. After a
    fatal error flush() raises it (KafkaException), which is recorded as {"raised": ...}.
    """
    deadline = time.monotonic() + DEADLINE_S
    left = len(producer)
    while left > 0 and time.monotonic() < deadline and not any(e.get("fatal") for e in errors):
        try:
            left = producer.flush(0.2)
        except KafkaException as e:
            errors.append({"raised": error_entry(e.args[0])})
            return len(producer)
    return left


def discard(producer):
    """Drops what is still queued (after a fatal error purge() raises too), so the producer closes at once."""
    try:
        producer.purge()
        producer.flush(2)
    except KafkaException:
        pass


def produce(conf, topic, count, idempotent):
    errors = []
    reports = []
    producer = new_producer(conf, errors, idempotent)
    for i in range(count):
        producer.produce(topic, key="k%d" % i, value="%s-%d" % (topic, i), partition=0,
                         on_delivery=lambda err, msg: reports.append(delivery_entry(err, msg)))
        producer.poll(0)
    undelivered = flush(producer, errors)
    discard(producer)
    return {"reports": reports, "undelivered": undelivered, "errors": errors}


def consume(conf, topic, group, committed_before):
    errors = []
    consumer = Consumer({
        **conf,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
        "error_cb": lambda err: errors.append(error_entry(err)),
    })
    tp = TopicPartition(topic, 0)
    out = {"committed_before": None, "committed_before_error": None}
    if committed_before:
        # Not asked of a group the client may not use: committed() keeps retrying the coordinator
        # lookup until its timeout rather than report the refusal.
        try:
            out["committed_before"] = consumer.committed([tp], timeout=10)[0].offset
        except KafkaException as e:
            out["committed_before_error"] = error_entry(e.args[0])
    consumer.subscribe([topic])
    records = []
    consume_errors = []
    deadline = time.monotonic() + DEADLINE_S
    eof = False
    while not eof and time.monotonic() < deadline and not consume_errors:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof = True
            else:
                consume_errors.append(error_entry(msg.error()))
            continue
        records.append({
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": None if msg.key() is None else msg.key().decode(),
            "value": msg.value().decode(),
        })
    committed = None
    commit_error = None
    if records:
        try:
            consumer.commit(asynchronous=False)
            committed = consumer.committed([tp], timeout=10)[0].offset
        except KafkaException as e:
            commit_error = error_entry(e.args[0])
    consumer.close()
    return {
        **out,
        "eof": eof,
        "records": records,
        "consume_errors": consume_errors,
        "committed": committed,
        "commit_error": commit_error,
        "errors": errors,
    }


def produce_twice(conf, topic):
    errors = []
    reports = []
    producer = new_producer(conf, errors, False)
    on_delivery = lambda err, msg: reports.append(delivery_entry(err, msg))
    producer.produce(topic, value="before", partition=0, on_delivery=on_delivery)
    flush(producer, errors)
    print(json.dumps({"ev": "first", "reports": reports}), flush=True)
    sys.stdin.readline()
    producer.produce(topic, value="after", partition=0, on_delivery=on_delivery)
    undelivered = flush(producer, errors)
    discard(producer)
    return {"reports": reports, "undelivered": undelivered, "errors": errors}


def main():
    conf, command, args = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if command == "produce":
        result = produce(conf, args[0], int(args[1]), args[2] == "true")
    elif command == "consume":
        result = consume(conf, args[0], args[1], args[2:] == ["committed-before"])
    elif command == "produce-twice":
        result = produce_twice(conf, args[0])
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
