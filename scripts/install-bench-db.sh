#!/bin/sh
# Installs what `npm run bench:db` compares Cortado with: Debian's PostgreSQL 15 (binaries under
# /usr/lib/postgresql/15/bin) and etcd (/usr/bin/etcd). Run as root. The benchmark starts its own
# primary and standby in a temp dir as the `postgres` user the package creates, and its own three
# etcd members; it uses neither package's own service.
set -eu
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (or: sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends postgresql-15 etcd-server
/usr/lib/postgresql/15/bin/postgres --version
/usr/bin/etcd --version
