#!/usr/bin/env bash
# A routed chain of network namespaces whose routers export real sFlow:
#
#   h1 -- leaf1 -- spine -- leaf2 -- h2      (kernel routing: TTL drops per hop)
#   each router's "mgmt" veth -> bridge mgbr in ${P}mg, collector at 10.255.0.1
#
# up2 adds a second spine, sp2 (mgmt 10.255.0.14), with kernel ECMP on both
# leaves over the two spines; "link l1 swpN down|up" fails and heals a
# leaf-spine link.
#
# usage: fabric.sh up | up2 | agents ovs|pmacct N | link NS DEV up|down | down
# P (namespace prefix) and W (state dir) come from the environment, so
# parallel runs never collide. Every daemon writes a pid file under $W, and
# down stops exactly those PIDs, then deletes exactly these namespaces.
set -euo pipefail
P=${P:?set P, the namespace prefix}
W=${W:?set W, the state directory}
COLL=10.255.0.1

down() {
  for f in "$W"/*.pid "$W"/*/*.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  for n in h1 l1 sp sp2 l2 h2 mg; do ip netns del "$P$n" 2>/dev/null || true; done
}

routers() { # the routers of this fabric: sp2 only with up2
  if ip netns list | grep -qw "${P}sp2"; then echo l1 sp l2 sp2; else echo l1 sp l2; fi
}

link() { # NS1 IF1 ADDR1 NS2 IF2 ADDR2
  ip link add "$P-a" type veth peer name "$P-b"
  ip link set "$P-a" netns "$P$1"; ip -n "$P$1" link set dev "$P-a" name "$2"
  ip link set "$P-b" netns "$P$4"; ip -n "$P$4" link set dev "$P-b" name "$5"
  if [ -n "$3" ]; then ip -n "$P$1" addr add "$3" dev "$2"; fi
  ip -n "$P$1" link set dev "$2" up
  if [ -n "$6" ]; then ip -n "$P$4" addr add "$6" dev "$5"; fi
  ip -n "$P$4" link set dev "$5" up
}

up() {
  mkdir -p "$W"
  for n in h1 l1 sp l2 h2 mg; do ip netns add "$P$n"; ip -n "$P$n" link set dev lo up; done
  link h1 eth0 10.1.1.2/24 l1 swp1 10.1.1.1/24
  link l1 swp2 10.0.1.0/31 sp swp1 10.0.1.1/31
  link sp swp2 10.0.2.1/31 l2 swp2 10.0.2.0/31
  link l2 swp1 10.2.2.1/24 h2 eth0 10.2.2.2/24
  ip -n "${P}mg" link add mgbr type bridge
  ip -n "${P}mg" addr add "$COLL/24" dev mgbr
  ip -n "${P}mg" link set dev mgbr up
  local i=11
  for r in l1 sp l2; do
    link "$r" mgmt "10.255.0.$i/24" mg "m$r" ""
    ip -n "${P}mg" link set dev "m$r" master mgbr
    i=$((i+1))
  done
  for r in l1 sp l2; do ip netns exec "$P$r" sysctl -qw net.ipv4.ip_forward=1; done
  ip -n "${P}h1" route add default via 10.1.1.1
  ip -n "${P}h2" route add default via 10.2.2.1
  ip -n "${P}l1" route add default via 10.0.1.1
  ip -n "${P}l2" route add default via 10.0.2.1
  ip -n "${P}sp" route add 10.1.1.0/24 via 10.0.1.0
  ip -n "${P}sp" route add 10.2.2.0/24 via 10.0.2.0
  ip -n "${P}sp" route add 172.16.1.0/24 via 10.0.2.0
  for c in 20 21; do
    ip -n "${P}h2" addr add "172.16.1.$c/32" dev lo
    ip -n "${P}l2" route add "172.16.1.$c/32" via 10.2.2.2
  done
  for h in h1 h2; do ip netns exec "$P$h" ethtool -K eth0 tso off gso off tx off >/dev/null; done
}

up2() { # h1 - l1 - {sp, sp2} - l2 - h2, ECMP at both leaves
  up
  ip netns add "${P}sp2"; ip -n "${P}sp2" link set dev lo up
  link l1 swp3 10.0.3.0/31 sp2 swp1 10.0.3.1/31
  link sp2 swp2 10.0.4.1/31 l2 swp3 10.0.4.0/31
  link sp2 mgmt 10.255.0.14/24 mg msp2 ""
  ip -n "${P}mg" link set dev msp2 master mgbr
  ip netns exec "${P}sp2" sysctl -qw net.ipv4.ip_forward=1
  ip -n "${P}l1" route replace default nexthop via 10.0.1.1 dev swp2 nexthop via 10.0.3.1 dev swp3
  ip -n "${P}l2" route replace default nexthop via 10.0.2.1 dev swp2 nexthop via 10.0.4.1 dev swp3
  ip -n "${P}sp2" route add 10.1.1.0/24 via 10.0.3.0
  ip -n "${P}sp2" route add 10.2.2.0/24 via 10.0.4.0
  ip -n "${P}sp2" route add 172.16.1.0/24 via 10.0.4.0
}

agents_ovs() { # OVS bridges with no flows: the kernel routes, OVS only samples.
  local n=$1
  for r in $(routers); do
    local d="$W/ovs-$r"; mkdir -p "$d"
    OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ip netns exec "$P$r" env OVS_RUNDIR="$d" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" \
      --pidfile="$d/ovsdb-server.pid" --log-file="$d/ovsdb-server.log" --detach
    ovs-vsctl --db="unix:$d/db.sock" --no-wait init
    ip netns exec "$P$r" env OVS_RUNDIR="$d" ovs-vswitchd "unix:$d/db.sock" \
      --pidfile="$d/ovs-vswitchd.pid" --log-file="$d/ovs-vswitchd.log" --detach
    local ports="-- add-port br0 swp1 -- add-port br0 swp2"
    if ip -n "$P$r" link show swp3 >/dev/null 2>&1; then ports="$ports -- add-port br0 swp3"; fi
    # shellcheck disable=SC2086
    ovs-vsctl --db="unix:$d/db.sock" add-br br0 -- set bridge br0 datapath_type=netdev fail_mode=secure \
      $ports \
      -- --id=@s create sflow agent=mgmt target="\"$COLL:6343\"" header=128 sampling="$n" polling=2 \
      -- set bridge br0 sflow=@s >/dev/null
    OVS_RUNDIR=$d ovs-ofctl del-flows br0
  done
}

agents_pmacct() { # pmacctd + sfprobe on both routed ports, ingress only.
  local n=$1 i=11
  for r in l1 sp l2; do
    printf 'ifindex=1\tifname=swp1\tdirection=in\nifindex=2\tifname=swp2\tdirection=in\n' > "$W/pm-$r.map"
    printf '%s\n' "daemonize: false" "pcap_interfaces_map: $W/pm-$r.map" "pcap_ifindex: map" "snaplen: 128" \
      "plugins: sfprobe[s]" "sfprobe_receiver[s]: $COLL:6343" "sfprobe_agentip[s]: 10.255.0.$i" \
      "sfprobe_agentsubid[s]: 0" "sampling_rate[s]: $n" "sfprobe_ifspeed[s]: 10000000000" > "$W/pm-$r.conf"
    ip netns exec "$P$r" pmacctd -f "$W/pm-$r.conf" > "$W/pm-$r.log" 2>&1 &
    echo $! > "$W/pm-$r.pid"
    i=$((i+1))
  done
}

case "${1:-}" in
  up) up ;;
  up2) up2 ;;
  link) ip -n "$P${2:?namespace}" link set dev "${3:?device}" "${4:?up or down}" ;;
  agents)
    case "${2:-}" in
      ovs) agents_ovs "${3:-1}" ;;
      pmacct) agents_pmacct "${3:-1}" ;;
      *) echo "usage: $0 agents ovs|pmacct N" >&2; exit 2 ;;
    esac ;;
  down) down ;;
  *) echo "usage: $0 up | up2 | agents ovs|pmacct N | link NS DEV up|down | down" >&2; exit 2 ;;
esac
