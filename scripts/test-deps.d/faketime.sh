#!/bin/sh
# libfaketime (Debian's "faketime") for tests/wi11_alerts_dst.rs: the real server runs with
# libfaketimeMT.so.1 preloaded, so its wall clock can be moved across daylight-saving
# changes while alert mail goes to a real mailbox. Idempotent.
set -eu
if ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends faketime >/dev/null
ls /usr/lib/*/faketime/libfaketimeMT.so.1
