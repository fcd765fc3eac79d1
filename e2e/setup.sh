#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests need: real sFlow agents
# (Open vSwitch, pmacctd), real BGP speakers (FRR, BIRD, gobgpd, ExaBGP),
# headless Chromium and Firefox for the dashboard, Prometheus to scrape
# the collector, NATS with JetStream for scale-out, a
# reference decoder (tshark), capture and traffic tools, and the GeoIP
# country database with its lookup tool (the country: key's reference). Idempotent: it
# installs only what is missing. Needs root.
set -euo pipefail
need=()
for pair in ovs-vswitchd:openvswitch-switch pmacctd:pmacct tshark:tshark tcpdump:tcpdump \
            hping3:hping3 curl:curl ethtool:ethtool ip:iproute2 ping:iputils-ping \
            /usr/lib/frr/bgpd:frr bird:bird2 gobgpd:gobgpd exabgp:exabgp chromium:chromium firefox-esr:firefox-esr \
            prometheus:prometheus geoiplookup:geoip-bin /usr/share/GeoIP/GeoIP.dat:geoip-database \
            nats-server:nats-server; do
  { command -v "${pair%%:*}" || [ -f "${pair%%:*}" ]; } >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "e2e setup: installing ${need[*]}"
# tshark asks whether non-root users may capture; answer no, without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
# Keep the packages' init scripts from starting daemons (OVS, frr) on the
# host: the tests start their own, privately, in their own namespaces.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
