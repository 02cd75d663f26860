"""Drives kafka-python 2.0.2 (Debian python3-kafka) over the broker's secured listeners for
test/compat/security-clients.test.ts.

CONFIG is a JSON object of keyword arguments every client of the command gets (bootstrap_servers,
security_protocol, sasl_mechanism, sasl_plain_username, sasl_plain_password, ssl_cafile,
ssl_check_hostname, ssl_certfile, ssl_keyfile). Each command prints one JSON object on stdout; the TypeScript test makes
the assertions. Usage:
  security_kafka_python.py CONFIG round-trip TOPIC COUNT
      KafkaProducer acks=all sends record i (key k<i>, value <TOPIC>-<i>) to partition 0 of an
      auto-created topic; a group-less KafkaConsumer (assign + seek_to_beginning) reads them back.
  security_kafka_python.py CONFIG bad-login
      constructs a KafkaProducer (which connects to bootstrap at once) and reports the exception
      it raises, with kafka.conn's error log lines: for a wrong password, or a client certificate
      the broker does not trust.
Run with /usr/bin/python3 (the Debian interpreter that has the kafka package).
"""

import json
import logging
import sys
import time

import kafka.errors
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

DEADLINE_S = 20


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def round_trip(conf, topic, count):
    producer = KafkaProducer(acks="all", linger_ms=5, retries=0, max_in_flight_requests_per_connection=1, **conf)
    futures = []
    for i in range(count):
        key, value = "k%d" % i, "%s-%d" % (topic, i)
        futures.append((key, value, producer.send(topic, key=key.encode(), value=value.encode(), partition=0)))
    producer.flush(DEADLINE_S)
    sent = []
    for key, value, future in futures:
        md = future.get(timeout=DEADLINE_S)
        sent.append({"key": key, "value": value, "partition": md.partition, "offset": md.offset})
    producer.close()

    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="none", fetch_max_wait_ms=100, **conf)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    records = []
    deadline = time.monotonic() + DEADLINE_S
    while len(records) < count and time.monotonic() < deadline:
        for part, batch in consumer.poll(timeout_ms=200).items():
            for r in batch:
                records.append({
                    "partition": part.partition,
                    "offset": r.offset,
                    "key": None if r.key is None else r.key.decode(),
                    "value": r.value.decode(),
                })
    # Anything past the expected count would be a duplicate: poll once more to catch it.
    for part, batch in consumer.poll(timeout_ms=300).items():
        for r in batch:
            records.append({"partition": part.partition, "offset": r.offset, "key": None, "value": r.value.decode()})
    consumer.close()
    return {"sent": sent, "records": records}


def bad_login(conf):
    capture = LogCapture()
    logging.getLogger("kafka").addHandler(capture)
    started = time.monotonic()
    out = {"exception": None}
    try:
        KafkaProducer(**conf).close()
    except (kafka.errors.KafkaError, OSError) as e:
        # OSError: kafka-python 2.0.2 lets some socket and ssl errors escape as they are.
        out["exception"] = type(e).__name__
        out["message"] = str(e)
    out["seconds"] = time.monotonic() - started
    out["log"] = capture.lines
    return out


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    conf, command, args = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if command == "round-trip":
        result = round_trip(conf, args[0], int(args[1]))
    elif command == "bad-login":
        result = bad_login(conf)
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
