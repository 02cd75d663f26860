#!/usr/bin/env bash
# The system tools the tests and benchmarks drive, in one list: `npm test` and `.ci/run` both run
# this script first, so the two cannot drift apart. A tool that is missing is installed from
# Debian's packages with apt-get (one line per tool); without apt-get the script stops at once with
# the packages to install, instead of letting dozens of tests fail one by one. The tests need root
# (network namespaces), so the script checks that first.
#
# Each entry: Debian package | what checks that it is there | what uses it.
set -euo pipefail

TOOLS=(
  "kcat|command -v kcat|the librdkafka compatibility tests"
  "python3-kafka|/usr/bin/python3 -c 'import kafka'|the kafka-python compatibility tests"
  "python3-confluent-kafka|/usr/bin/python3 -c 'import confluent_kafka'|the confluent-kafka compatibility tests"
  "python3-snappy|/usr/bin/python3 -c 'import snappy'|kafka-python's snappy codec"
  "python3-lz4|/usr/bin/python3 -c 'import lz4.frame'|kafka-python's lz4 codec"
  "python3-zstandard|/usr/bin/python3 -c 'import zstandard'|kafka-python's zstd codec"
  "burrow|command -v Burrow|the Burrow compatibility test"
  "zookeeper|test -f /usr/share/java/zookeeper.jar|the ZooKeeper Burrow 1.2.1 needs"
  "gcc|command -v gcc|building test/mock-kafka/mock-cluster.c, the librdkafka mock cluster tests run against"
  "librdkafka-dev|test -f /usr/include/librdkafka/rdkafka_mock.h|the librdkafka mock cluster (rdkafka_mock.h, -lrdkafka) of test/mock-kafka/"
  "postgresql-15|test -x /usr/lib/postgresql/15/bin/postgres|the PostgreSQL baseline of bench:db and its smoke test"
  "etcd-server|test -x /usr/bin/etcd|the etcd baseline of bench:db and its smoke test"
  "iproute2|command -v ip|the network-namespace test network (ip netns, veth, bridge)"
  "nftables|command -v nft|cutting links in the network-namespace tests"
  "openssl|command -v openssl|the TLS certificates (a CA, the broker's, clients') of the security tests"
)

# The network-partition tests create network namespaces, which takes root.
if [ "$(id -u)" -ne 0 ]; then
  echo "npm test needs root: its network-partition tests create network namespaces (ip netns). Run it as root (sudo npm test)." >&2
  exit 1
fi

missing=()
for entry in "${TOOLS[@]}"; do
  IFS='|' read -r package check purpose <<<"$entry"
  if ! bash -c "$check" >/dev/null 2>&1; then missing+=("$package|$purpose"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

packages=()
for entry in "${missing[@]}"; do packages+=("${entry%%|*}"); done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system tools: missing ${packages[*]} (the tests drive them), and there is no apt-get to install them:" >&2
  echo "install the equivalent packages of your system (Debian: apt-get install -y ${packages[*]}), then run npm test again" >&2
  exit 1
fi

for entry in "${missing[@]}"; do echo "system tools: installing ${entry%%|*}, for ${entry#*|}"; done
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq "${packages[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "system tools: apt-get failed to install ${packages[*]} (output above)" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
echo "system tools: installed ${packages[*]}"
