#!/usr/bin/env python3
"""What the common sFlow-RT client scripts do, against a running collector.

Usage: clients.py http://HOST:PORT

Standard library only. Each check prints "ok NAME ..." or exits non-zero
with what went wrong:

- defines a logged flow and two thresholds, as RESTflow scripts do;
- tails /events/json across its thresholds, indexing each event by its
  thresholdID (a foreign one is a KeyError, as in those scripts);
- tails /flows/json (tail_flows.py);
- top flows by /activeflows;
- /metric with summary prefixes, /table with sort:, and the Prometheus
  exporter's text;
- a host dashboard (hsflowd's metrics, filtered by os_name), the places
  the top flow passes (/flowlocations, /flowvalue) and /flowkeys.

It runs for at most about 40 seconds.
"""

import json
import sys
import time
import urllib.request

BASE = sys.argv[1].rstrip("/")


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=70) as resp:
        text = resp.read().decode()
        return json.loads(text) if text and resp.headers.get_content_type() == "application/json" else text


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


# Definitions, as a RESTflow script PUTs them.
call("PUT", "/flow/client_pairs/json",
     {"keys": "ipsource,ipdestination", "value": "bytes", "log": True, "activeTimeout": 2})
call("PUT", "/flow/client_bps/json", {"keys": "ipsource,ipdestination", "value": "bps"})
call("PUT", "/threshold/client_big/json", {"metric": "client_bps", "value": 100e6, "byFlow": True})
call("PUT", "/threshold/client_busy/json", {"metric": "ifinutilization", "value": 0.5})
mine = {"elephant": [], "client_big": [], "client_busy": []}

# tail the events of my thresholds: a foreign thresholdID would raise.
event_id, deadline = -1, time.time() + 30
while time.time() < deadline and not (mine["client_big"] and mine["client_busy"]):
    events = call("GET", "/events/json?maxEvents=100&timeout=5&eventID=%d" % event_id)
    if not events:
        continue
    event_id = events[0]["eventID"]
    for e in reversed(events):
        mine[e["thresholdID"]].append(e)
if not mine["client_big"] or not mine["client_busy"]:
    fail("events within 30 s: %s" % {k: len(v) for k, v in mine.items()})
big = mine["client_big"][0]
print("ok events", {k: len(v) for k, v in mine.items()}, "first client_big:", big["flowKey"], big["agent"])

# tail_flows: the logged flow's records, newest first by flowID.
flow_id, records, deadline = -1, [], time.time() + 10
while time.time() < deadline and not records:
    flows = call("GET", "/flows/json?maxFlows=100&timeout=5&flowID=%d" % flow_id)
    if flows:
        flow_id = flows[0]["flowID"]
        records += [f for f in flows if f["name"] == "client_pairs"]
if not records:
    fail("no client_pairs records in /flows/json within 10 s")
r = records[0]
if r["value"] <= 0 or r["end"] < r["start"] or len(r["flowKeys"].split(",")) != 2:
    fail("flow record %r" % r)
print("ok flows", len(records), "records, e.g.", r["flowKeys"], r["agent"], r["dataSource"], round(r["value"]))

# top flows.
top = call("GET", "/activeflows/ALL/client_bps/json?maxFlows=5&aggMode=max")
if not top or top[0]["value"] < 100e6 or any(a["value"] < b["value"] for a, b in zip(top, top[1:])):
    fail("activeflows %r" % top)
print("ok activeflows", top[0]["key"], "%.0f Mbit/s" % (top[0]["value"] / 1e6))

# /metric with prefixes, in request order.
stats = call("GET", "/metric/ALL/max:ifinutilization,sum:ifspeed,med:ifspeed,sdev:ifinoctets/json")
if [s["metricName"] for s in stats] != ["max:ifinutilization", "sum:ifspeed", "med:ifspeed", "sdev:ifinoctets"] \
        or any(s["metricN"] == 0 for s in stats) or stats[0]["metricValue"] <= 0:
    fail("metric %r" % stats)
print("ok metric max:ifinutilization %.2f%% at %s" % (stats[0]["metricValue"], stats[0]["agent"]))

# /table sorted, the top 5 ports by octets in.
table = call("GET", "/table/ALL/ifname,sort:ifinoctets:-5/json")
values = [row[1]["metricValue"] for row in table]
if len(table) != 5 or values != sorted(values, reverse=True):
    fail("table %r" % table)
print("ok table", [(row[0]["agent"], row[0]["metricValue"]) for row in table][:2])

# The exporter's text, as Prometheus reads it.
text = call("GET", "/prometheus/metrics/ALL/ifinoctets/txt")
lines = [l for l in text.splitlines() if l.startswith("sflow_ifinoctets{")]
if not lines or not all('agent="' in l and 'ifname="' in l for l in lines):
    fail("prometheus text %r" % text[:300])
print("ok prometheus", len(lines), "series")

# A metrics browser: every metric name and how fresh it is; a license check.
names = call("GET", "/metrics/json")
if "ifinoctets" not in names or "client_bps" not in names or not all(isinstance(v, int) and v >= 0 for v in names.values()):
    fail("metrics %r" % names)
lic = call("GET", "/license/json")
if lic["license"]["type"] != "open" or not lic["license"]["host_ok"] or "host" not in lic["analyzer"]:
    fail("license %r" % lic)
print("ok metrics", len(names), "names; license", lic["license"]["type"])

# A host dashboard: the busiest linux hosts by load, as hsflowd reports them.
hosts = call("GET", "/table/ALL/host_name,load_one,cpu_utilization,mem_utilization,sort:load_one:-3/json?os_name=linux")
loads = [row[1]["metricValue"] for row in hosts]
if not hosts or loads != sorted(loads, reverse=True) or not all(0 < row[2]["metricValue"] <= 100 for row in hosts):
    fail("host table %r" % hosts)
print("ok hosts", [(row[0]["metricValue"], row[1]["metricValue"]) for row in hosts])

# Where the top flow passes, and its value at the first of those places.
locs = call("GET", "/flowlocations/ALL/client_bps/json?key=" + top[0]["key"])
if len(locs) < 2 or any(a["value"] < b["value"] for a, b in zip(locs, locs[1:])):
    fail("flowlocations of %s: %r" % (top[0]["key"], locs))
value = call("GET", "/flowvalue/%s/%s.client_bps/json?key=%s" % (locs[0]["agent"], locs[0]["dataSource"], top[0]["key"]))
if not isinstance(value, (int, float)) or value <= 0:
    fail("flowvalue %r" % value)
keys = call("GET", "/flowkeys/json")
if "ipsource" not in keys or "tcpsourceport" not in keys:
    fail("flowkeys %r" % keys)
print("ok flowlocations", [(l["agent"], l["dataSource"]) for l in locs], "flowvalue %.0f Mbit/s" % (value / 1e6),
      "flowkeys", len(keys))

for name in ("client_big", "client_busy"):
    call("DELETE", "/threshold/%s/json" % name)
for name in ("client_pairs", "client_bps"):
    call("DELETE", "/flow/%s/json" % name)
print("ok all")
