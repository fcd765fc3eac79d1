#!/usr/bin/env bash
# demo.sh: the collector and a simulated leaf/spine fabric side by side, on
# loopback only, until Ctrl-C stops both. Run it through `make demo`.
set -euo pipefail
BIN=${BIN:-bin}
SFLOW=${DEMO_SFLOW:-127.0.0.1:6343}
HTTP=${DEMO_HTTP:-127.0.0.1:8008}
# A high port, so no root is needed; the simulated leaves connect from 127.0.1.N.
BGP=${DEMO_BGP:-127.0.0.1:1179}
SEED=${DEMO_SEED:-1}
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/fabrictrace-demo.XXXXXX")

pids=()
stop() {
	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	echo "demo stopped; logs kept in $LOGS"
}
trap stop INT TERM EXIT

# DEMO_FLAGS: more collector flags, e.g. "-engine-shards 2".
# shellcheck disable=SC2086
"$BIN/collector" -sflow "$SFLOW" -http "$HTTP" -define "$(dirname "$0")/demo.json" \
	-bgp "$BGP" -bgp-accept 127.0.1.0/24 -db "$LOGS/fabrictrace.db" \
	-stats-interval 10s ${DEMO_FLAGS:-} 2>"$LOGS/collector.log" &
pids+=($!)
# Wait for the collector to listen (or die) before the fabric starts sending.
for _ in $(seq 50); do
	grep -q 'serving REST API' "$LOGS/collector.log" && break
	kill -0 "${pids[0]}" 2>/dev/null || { cat "$LOGS/collector.log"; exit 1; }
	sleep 0.1
done

# One long elephant on a known pair, so pathtrace has a path to show at once.
# Links fail and heal as in a real fabric (the first within 20 s), and agents
# hold half-full datagrams for 1 s as Open vSwitch does.
"$BIN/fabricsim" -sflow "$SFLOW" -bgp "$BGP" -elephant 172.16.1.11,172.16.1.42,300,1s,1h -collision -link-failures \
	-export-delay 1s -seed "$SEED" -truth "$LOGS/truth.json" 2>"$LOGS/fabricsim.log" &
pids+=($!)

cat <<MSG
fabrictrace demo: 2 spines, 4 leaves, 4 servers, 12 containers (172.16.1.11-43),
sampling 1 in 1000, a 300 Mbit/s elephant from 172.16.1.11 to 172.16.1.42 for
the whole demo and a 400 Mbit/s one every 20 s between random pairs, over an elephant
threshold of 100 Mbit/s (flow "elephant": node:inputifindex,ipsource,ipdestination,ipttl).
A leaf-spine link fails every 30-60 s (the first within 20 s, under an elephant)
for 10-30 s: watch the path change, and change back.

  its path:         $BIN/pathtrace -collector http://$HTTP 172.16.1.11 172.16.1.42
  elephant events:  curl 'http://$HTTP/events/json?thresholdID=elephant&maxEvents=10&timeout=60'
  path changes:     curl 'http://$HTTP/events/json?thresholdID=pathchange'
  its history:      $BIN/pathtrace -collector http://$HTTP -history 172.16.1.11 172.16.1.42
  ECMP collisions:  curl 'http://$HTTP/events/json?thresholdID=collision'
  elephant lives:   curl 'http://$HTTP/elephants/json'
  hop by hop now:   curl 'http://$HTTP/activeflows/ALL/elephant/json?minValue=1000000'
  agents:           curl 'http://$HTTP/agents/json'
  BGP peers:        curl 'http://$HTTP/bgp/neighbors/json'
  who owns .22:     curl 'http://$HTTP/rib/lookup/json?address=172.16.1.22'
  an elephant now:  kill -USR1 ${pids[1]}

  logs: $LOGS (collector.log, fabricsim.log; truth.json when the demo stops)

Ctrl-C stops both. Elephants and ingest totals follow:
MSG
tail -n +1 -f "$LOGS/collector.log" --pid "${pids[0]}" | grep --line-buffered -E 'elephant|path change|ingest totals|bgp peer|WARN|ERROR' &
pids+=($!)
wait "${pids[0]}"
