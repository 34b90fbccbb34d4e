#!/bin/sh
# Debian's chromium for the headless-browser tests of the subscription pages
# (tests/subscriptions.rs). Idempotent: does nothing when it is already installed.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
