#!/bin/sh
# curl and the openssl CLI for the HTTP transport and TLS tests (tests/http_transport.rs:
# multipart uploads with a cookie jar, certificates made by the test, s_client on the line
# protocol). Idempotent: does nothing when both are installed.
set -eu
if command -v curl >/dev/null && command -v openssl >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends curl openssl ca-certificates >/dev/null
curl --version | head -1
openssl version
