#!/bin/sh
# Python's Prometheus client, whose text parser reads GET /metrics in tests/scale.rs.
# Idempotent: does nothing when it is already installed.
set -eu
if /usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3-prometheus-client >/dev/null
