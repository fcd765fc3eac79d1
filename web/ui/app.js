// fabrictrace dashboard: the fabric, its live elephants and their paths.
// Plain JS and SVG; it talks only to the collector that serves it, and it
// updates from the long-poll APIs.
"use strict";

const $ = (id) => document.getElementById(id);
const svgNS = "http://www.w3.org/2000/svg";
const state = { nodes: [], links: {}, elephants: [], rib: [], collisions: new Map(), changed: new Set(), gone: new Set(),
  util: {}, peers: null, agentsFresh: null };

async function api(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function setStatus(ok, text) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("down", !ok);
}

function bits(bytesPerSecond) {
  const b = bytesPerSecond * 8;
  if (b >= 1e9) return (b / 1e9).toFixed(2) + " Gbit/s";
  if (b >= 1e6) return (b / 1e6).toFixed(1) + " Mbit/s";
  if (b >= 1e3) return (b / 1e3).toFixed(1) + " kbit/s";
  return b.toFixed(0) + " bit/s";
}

function ago(ms) {
  if (ms < 1000) return "now";
  if (ms < 60000) return Math.round(ms / 1000) + " s";
  return Math.round(ms / 60000) + " min";
}

function tier(name) {
  if (/spine/i.test(name)) return 0;
  if (/leaf|tor/i.test(name)) return 1;
  return 2;
}

// layout places spines on top, leaves below, servers below those and their
// containers at the bottom, each row spread evenly.
function layout() {
  const svg = $("fabric");
  const width = svg.clientWidth || 900;
  const rows = [[], [], [], []];
  const hostOf = {}; // container address -> host node name
  const byAgent = {};
  for (const n of state.nodes) byAgent[n.agent] = n.name;
  for (const e of state.rib) {
    const host = byAgent[e.best.nexthop];
    if (host && e.prefix.endsWith("/32")) hostOf[e.prefix.slice(0, -3)] = host;
  }
  for (const n of state.nodes) rows[tier(n.name)].push({ id: n.name, label: n.name, kind: ["spine", "leaf", "server"][tier(n.name)] });
  const containers = Object.keys(hostOf).sort((a, b) => hostOf[a].localeCompare(hostOf[b]) || a.localeCompare(b, undefined, { numeric: true }));
  for (const c of containers) rows[3].push({ id: c, label: c.split(".").slice(-1)[0] === c ? c : "." + c.split(".").pop(), kind: "container", host: hostOf[c], title: c });
  const pos = {};
  rows.forEach((row, r) => {
    row.forEach((n, i) => {
      pos[n.id] = { x: (width * (i + 0.5)) / row.length, y: 60 + r * 130, n };
    });
  });
  return { pos, hostOf };
}

function el(name, attrs, parent) {
  const e = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// colour gives each elephant its own hue, by the golden angle, kept out of
// the reds that mark collisions.
function colour(id) {
  const hue = 40 + ((id * 137.508) % 280);
  return "hsl(" + hue.toFixed(0) + ", 70%, " + (id % 2 ? 38 : 48) + "%)";
}

function draw() {
  const svg = $("fabric");
  svg.textContent = "";
  const { pos, hostOf } = layout();
  // Links: the topology's, each path's hops, and containers to their hosts.
  const links = new Map();
  const addLink = (a, b, name) => {
    if (!pos[a] || !pos[b] || a === b) return;
    const k = [a, b].sort().join("|");
    if (!links.has(k)) links.set(k, { a, b, name });
  };
  for (const [name, l] of Object.entries(state.links)) addLink(l.node1, l.node2, name);
  // Hops at one TTL (bridged, or a path mid-change) are no link between them.
  const drawn = (e) => (e.path || []).filter((h) => h.kind !== "l2" && h.kind !== "missing");
  for (const e of state.elephants) {
    const hops = drawn(e).map((h) => h.node);
    for (let i = 1; i < hops.length; i++) if (tier(hops[i - 1]) !== tier(hops[i]) || !/spine|leaf/i.test(hops[i])) addLink(hops[i - 1], hops[i]);
  }
  for (const [c, host] of Object.entries(hostOf)) addLink(host, c);
  for (const l of links.values()) {
    const line = el("line", { x1: pos[l.a].x, y1: pos[l.a].y, x2: pos[l.b].x, y2: pos[l.b].y, class: "link" }, svg);
    const u = l.name ? linkUtil(state.links[l.name]) : null;
    if (u !== null) line.style.stroke = utilColour(u);
    if (l.name) el("title", {}, line).textContent = l.name + (u !== null ? ": " + u.toFixed(1) + " % busy" : "");
  }
  // Elephants, hop by hop in TTL order.
  state.elephants.forEach((e, i) => {
    const pts = [];
    for (const h of drawn(e)) if (pos[h.node]) pts.push(pos[h.node].x + ((i % 5) - 2) * 3 + "," + pos[h.node].y);
    if (e.owner && pos[e.owner.address]) pts.push(pos[e.owner.address].x + "," + pos[e.owner.address].y);
    if (pts.length < 2) return;
    const width = Math.max(2, Math.min(14, (e.peak * 8) / 50e6));
    const cls = "elephant" + (state.changed.has(e.flowKey) ? " changed" : "");
    const p = el("polyline", { points: pts.join(" "), class: cls, stroke: colour(e.elephantID), "stroke-width": width, "data-flow": e.flowKey }, svg);
    el("title", {}, p).textContent = e.flowKey + " " + bits(e.rate);
    p.addEventListener("click", () => showDetail(e));
  });
  // Live collisions, on top of the elephants that share the link.
  for (const l of links.values()) {
    if (!l.name || !state.collisions.has(l.name)) continue;
    const line = el("line", { x1: pos[l.a].x, y1: pos[l.a].y, x2: pos[l.b].x, y2: pos[l.b].y, class: "link collision", "data-link": l.name }, svg);
    el("title", {}, line).textContent = l.name + ": ECMP collision of " + state.collisions.get(l.name).join(" and ");
  }
  for (const { x, y, n } of Object.values(pos)) {
    const gone = n.kind === "container" && state.gone.has(n.id);
    const g = el("g", { class: "node " + n.kind + (gone ? " gone" : ""), "data-node": n.id }, svg);
    const w = n.kind === "container" ? 44 : 70;
    el("rect", { x: x - w / 2, y: y - 13, width: w, height: 26 }, g);
    el("text", { x, y }, g).textContent = n.label;
    el("title", {}, g).textContent = n.title || n.id;
  }
  $("empty").hidden = state.nodes.length > 0;
}

// linkUtil is a topology link's busier direction, in percent, from the
// counters of the ports at its ends.
function linkUtil(l) {
  let best = null;
  for (const [node, port] of [[l.node1, l.port1], [l.node2, l.port2]]) {
    const n = state.nodes.find((x) => x.name === node);
    const u = n && state.util[n.agent + "|" + port];
    if (u !== undefined && (best === null || u > best)) best = u;
  }
  return best;
}

function utilColour(u) {
  if (u >= 80) return "#c0392b";
  if (u >= 50) return "#e67e22";
  if (u >= 10) return "#f1c40f";
  return "#c9ced8";
}

// feed adds a line to the event feed.
function feed(cls, text, when) {
  const list = $("events");
  const li = document.createElement("li");
  li.className = cls;
  li.textContent = new Date(when || Date.now()).toLocaleTimeString() + " " + text;
  list.insertBefore(li, list.firstChild);
  while (list.children.length > 200) list.removeChild(list.lastChild);
}

const protoNames = { 1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6" };

async function showDetail(e) {
  const d = $("detail");
  const lines = [
    "elephant " + e.flowKey + (e.active ? "" : " (ended)"),
    "rate " + bits(e.rate) + " (peak " + bits(e.peak) + "), " + (e.bytes / 1e6).toFixed(1) + " MB over " + e.duration.toFixed(1) + " s",
  ];
  if (e.owner && e.owner.gone) {
    const was = e.owner.was;
    lines.push("destination withdrawn at " + new Date(e.owner.gone).toLocaleTimeString() + (was ? " (was " + was.prefix + " via " + (was.announcedBy || was.peer) + ")" : ""));
  } else if (e.owner) lines.push("destination " + e.owner.prefix + " on " + (e.owner.host || e.owner.nexthop) + " behind " + (e.owner.announcedBy || e.owner.peer));
  for (const h of e.path || []) lines.push("  ttl " + h.ttl + "  " + h.node + "  " + (h.in || h.inIfIndex || "-") + " -> " + (h.out || h.outIfIndex || "-") + (h.kind !== "sampled" ? "  (" + h.kind + ")" : ""));
  d.textContent = lines.join("\n");
  d.hidden = false;
  // Its 5-tuples: protocol and ports, from the paths the pair takes now.
  if (!e.src || !e.dst) return;
  try {
    const ps = await api("/paths/json?src=" + encodeURIComponent(e.src) + "&dst=" + encodeURIComponent(e.dst));
    for (const p of ps.paths) for (const f of p.flows) lines.push("  " + (protoNames[f.proto] || f.proto) + " " + f.srcPort + " -> " + f.dstPort + "  " + (f.bytes / 1e6).toFixed(1) + " MB on this path");
    d.textContent = lines.join("\n");
  } catch (err) { /* the detail stands without them */ }
}

function renderElephants() {
  const tb = $("elephants").tBodies[0];
  tb.textContent = "";
  for (const e of state.elephants) {
    const tr = tb.insertRow();
    tr.insertCell().textContent = e.flowKey;
    tr.insertCell().textContent = bits(e.rate);
    tr.insertCell().textContent = e.duration.toFixed(0) + " s";
    tr.insertCell().textContent = e.owner ? (e.owner.host || e.owner.nexthop) + (e.owner.gone ? " (gone)" : "") : "";
    tr.addEventListener("click", () => showDetail(e));
  }
  draw();
}

async function refreshElephants() {
  state.elephants = await api("/elephants/json?active=true");
  for (const e of state.elephants) if (e.owner && e.owner.gone) state.gone.add(e.owner.address);
  renderElephants();
}

// Long polls: elephants and events wake the page as they happen.
async function followElephants() {
  let after = -1;
  for (;;) {
    try {
      const recs = await api("/elephants/json?timeout=25&updateID=" + after);
      if (recs.length) after = recs[0].updateID;
      for (const r of recs.slice().reverse()) {
        if (r.update === "end") feed("ended", "elephant ended " + r.flowKey + " after " + r.duration.toFixed(0) + " s, " + (r.bytes / 1e6).toFixed(0) + " MB", r.end);
        else if (r.update === "gone") feed("gone", "destination of " + r.flowKey + " gone: " + r.owner.prefix + " withdrawn", r.owner.gone);
        else if (r.update === "ownerback") { state.gone.delete(r.owner.address); feed("started", "destination of " + r.flowKey + " announced again by " + (r.owner.announcedBy || r.owner.peer)); }
        else if (r.update === "start") feed("started", "elephant " + r.flowKey + " " + bits(r.peak) + (r.owner ? " to " + (r.owner.host || r.owner.nexthop) : ""), r.start);
      }
      await refreshElephants();
      setStatus(true, "live");
    } catch (err) {
      setStatus(false, "collector unreachable: " + err.message);
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

function eventText(e) {
  switch (e.thresholdID) {
    case "pathchange": return "path change " + e.flowKey + ": " + e.oldPath.join(" ") + " → " + e.newPath.join(" ");
    case "collision":
      if (e.end) return "ECMP collision on " + e.flowKey + " ended after " + ((e.end - e.start) / 1000).toFixed(0) + " s: " + e.flows.join(" and ");
      return "ECMP collision on " + e.flowKey + ": " + e.flows.join(" and ");
  }
  return e.thresholdID + " " + (e.flowKey || e.metric) + " at " + e.agent + " " + (e.value ? bits(e.value) : "");
}

async function followEvents() {
  let after = -1;
  for (;;) {
    try {
      const evs = await api("/events/json?builtin=true&maxEvents=50&timeout=25&eventID=" + after);
      if (!evs.length) continue;
      after = evs[0].eventID;
      for (const e of evs.reverse()) {
        feed(e.thresholdID, eventText(e), e.timestamp);
        if (e.thresholdID === "collision" && e.end) state.collisions.delete(e.flowKey);
        else if (e.thresholdID === "collision") state.collisions.set(e.flowKey, e.flows);
        if (e.thresholdID === "pathchange") state.changed.add(e.flowKey.split(",").slice(0, 2).join(","));
      }
      draw();
    } catch (err) {
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

async function refreshPanels() {
  try {
    const [nodes, topo, agents, counters, analyzer] = await Promise.all([api("/nodes/json"), api("/topology/json"),
      api("/agents/json"), api("/dump/ALL/ifname;ifinutilization;ifoututilization/json"), api("/analyzer/json")]);
    state.nodes = nodes;
    state.links = topo.links || {};
    const portNames = {};
    for (const m of counters) if (m.metricName === "ifname") portNames[m.agent + "|" + m.dataSource] = m.metricValue;
    state.util = {};
    for (const m of counters) {
      const port = portNames[m.agent + "|" + m.dataSource];
      if (m.metricName === "ifname" || !port) continue;
      const k = m.agent + "|" + port;
      state.util[k] = Math.max(state.util[k] || 0, m.metricValue);
    }
    const fresh = {};
    for (const [a, s] of Object.entries(agents)) {
      fresh[a] = s.lastSeen < 30000;
      if (state.agentsFresh && state.agentsFresh[a] && !fresh[a]) feed("agent", "agent " + a + " silent for " + ago(s.lastSeen));
      if (state.agentsFresh && state.agentsFresh[a] === false && fresh[a]) feed("agent", "agent " + a + " back");
    }
    state.agentsFresh = fresh;
    const tb = $("agents").tBodies[0];
    tb.textContent = "";
    const names = Object.keys(agents).sort();
    $("agent-count").textContent = names.length + " reporting" +
      (analyzer.kernelDrops !== undefined ? " · kernel drops " + analyzer.kernelDrops + " · dropped behind " + analyzer.droppedBehind : "");
    for (const a of names) {
      const s = agents[a];
      const tr = tb.insertRow();
      const node = nodes.find((n) => n.agent === a);
      tr.insertCell().textContent = node ? node.name + " (" + a + ")" : a;
      tr.insertCell().textContent = s.sFlowDatagramsReceived;
      tr.insertCell().textContent = s.sFlowFlowSamples + s.sFlowCounterSamples;
      const lost = s.sFlowDatagramsLost / Math.max(1, s.sFlowDatagramsReceived + s.sFlowDatagramsLost);
      tr.insertCell().textContent = (100 * lost).toFixed(2) + " %";
      tr.insertCell().textContent = s.sFlowFlowDrops;
      tr.insertCell().textContent = ago(s.lastSeen);
    }
    try {
      const [nbrs, rib] = await Promise.all([api("/bgp/neighbors/json"), api("/rib/json?limit=5000")]);
      state.rib = rib.entries;
      $("rib-size").textContent = rib.total + " prefixes";
      const bt = $("bgp").tBodies[0];
      bt.textContent = "";
      const peers = {};
      for (const n of nbrs) {
        peers[n.address] = n.state;
        if (state.peers && state.peers[n.address] !== n.state && (n.state === "established" || state.peers[n.address] === "established"))
          feed("bgp", "BGP peer " + n.address + " (AS " + n.asn + ") " + (n.state === "established" ? "up" : "down: " + n.state));
        const tr = bt.insertRow();
        tr.insertCell().textContent = n.address;
        tr.insertCell().textContent = n.asn;
        tr.insertCell().textContent = n.state;
        tr.insertCell().textContent = n.prefixesAccepted;
      }
      state.peers = peers;
    } catch (err) {
      $("rib-size").textContent = "BGP is off";
    }
    await refreshTopFlows();
    draw();
  } catch (err) {
    setStatus(false, "collector unreachable: " + err.message);
  }
}

// Top flows of a chosen definition, merged over the fabric by max.
async function refreshTopFlows() {
  const sel = $("flow-name");
  const defs = Object.keys(await api("/flow/json")).sort();
  if (sel.options.length !== defs.length) {
    const was = sel.value;
    sel.textContent = "";
    for (const d of defs) sel.add(new Option(d, d, false, d === was));
  }
  const tb = $("topflows").tBodies[0];
  tb.textContent = "";
  if (!sel.value) return;
  const def = (await api("/flow/" + encodeURIComponent(sel.value) + "/json")).value;
  for (const f of await api("/activeflows/ALL/" + encodeURIComponent(sel.value) + "/json?maxFlows=10&minValue=1")) {
    const tr = tb.insertRow();
    tr.insertCell().textContent = f.key;
    tr.insertCell().textContent = def === "bytes" ? bits(f.value) : def === "bps" ? bits(f.value / 8) : f.value.toFixed(1);
    const node = state.nodes.find((n) => n.agent === f.agent);
    tr.insertCell().textContent = node ? node.name : f.agent;
  }
}
$("flow-name").addEventListener("change", refreshTopFlows);

$("search").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = $("trace");
  try {
    const q = new URLSearchParams({ src: $("src").value.trim(), dst: $("dst").value.trim() });
    const r = await fetch("/paths/json?" + q);
    const ps = await r.json();
    if (!r.ok) { out.textContent = ps.error; return; }
    if (!ps.paths.length) { out.textContent = "No samples of this pair yet."; return; }
    const lines = [];
    for (const [name, o] of [["src", ps.srcOwner], ["dst", ps.dstOwner]]) {
      if (o) lines.push(name + " " + o.address + ": " + o.prefix + " announced by " + (o.announcedBy || o.peer) + ", host " + (o.host || o.nexthop) + (o.gone ? " (gone)" : ""));
    }
    ps.paths.forEach((p, i) => {
      lines.push("", "path " + (i + 1) + " of " + ps.paths.length + ": " + (100 * p.share).toFixed(0) + "% of bytes, " + p.flows.length + " flows" + (p.complete ? "" : ", incomplete"));
      for (const h of p.hops) lines.push("  " + h.ttl + "  " + (h.kind === "missing" ? "?" : h.node) + "  " + (h.in || h.inIfIndex || "-") + " -> " + (h.out || h.outIfIndex || "-") + (h.kind !== "sampled" ? "  (" + h.kind + ")" : ""));
    });
    for (const s of ps.split || []) lines.push("", "ECMP at TTL " + s.ttl + ": " + Object.entries(s.shares).map(([n, v]) => n + " " + (100 * v).toFixed(0) + "%").join(", "));
    out.textContent = lines.join("\n");
  } catch (err) {
    out.textContent = "collector unreachable: " + err.message;
  }
});

refreshPanels();
setInterval(refreshPanels, 10000); // panels change slowly; events and elephants come by long poll
// The collisions live now; the event feed then adds and ends them.
api("/collisions/json").then((cs) => { for (const c of cs) state.collisions.set(c.flowKey, c.flows); draw(); }).catch(() => {});
followElephants();
followEvents();
