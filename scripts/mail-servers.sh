#!/bin/sh
# Installs the real mail servers the mail integration tests talk to (Debian 12, run as root).
# Idempotent: does nothing when everything is present. It only installs; the tests start
# aiosmtpd themselves, and exim's sendmail delivers locally without a daemon.
set -eu

need=""
[ -f /usr/lib/python3/dist-packages/aiosmtpd/__init__.py ] || need="$need python3-aiosmtpd"
[ -x /usr/sbin/exim4 ] || need="$need exim4-daemon-light"

if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "mail-servers.sh: must run as root to install:$need" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-aiosmtpd exim4-daemon-light
fi

# The sendmail test delivers to this local user's mbox (/var/mail/mailtest).
if ! id mailtest >/dev/null 2>&1; then
    useradd -m mailtest
fi

/usr/bin/python3 -c 'import aiosmtpd' >/dev/null
[ -x /usr/sbin/sendmail ]
echo "mail-servers.sh: python3-aiosmtpd, exim4 and user mailtest are ready"
