#!/bin/sh
# The real WebIssues desktop client 1.1.5 (Debian's "webissues"), Xvfb and xdotool for
# tests/wi11.rs (the client logs in to webissued under Xvfb). Idempotent.
set -eu
if command -v webissues >/dev/null && command -v Xvfb >/dev/null && command -v xdotool >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq webissues xvfb xdotool python3 >/dev/null
