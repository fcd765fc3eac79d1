#!/usr/bin/env bash
# Installs the peer collectors make bench compares against: pmacct's sfacctd
# and nfdump's sfcapd. Idempotent; needs root. Their daemons are not started.
set -euo pipefail
need=()
for pair in sfacctd:pmacct sfcapd:nfdump-sflow nfdump:nfdump taskset:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "bench setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
