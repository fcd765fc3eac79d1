package flows

import (
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"sort"
	"strings"

	"github.com/fabrictrace/fabrictrace/decode"
)

// The path tracker keeps, for each sampled 5-tuple, where its samples were
// taken: agent, ports and the TTL each switch saw. Ordered by TTL, highest
// first, those observations are the flow's hop-by-hop path, since each
// routed hop takes one off the TTL.

type tuple struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
}

type pair struct{ src, dst netip.Addr }

// hopSeen is one place a 5-tuple was sampled, and when: first and last are
// the arrival times of its first and last samples.
type hopSeen struct {
	agent   netip.Addr
	in, out decode.Port
	ttl     uint8
	samples uint32
	bytes   float64
	first   float64
	last    float64
	// baseBytes is what bytes held when the tuple's current path began, for
	// a hop that it kept through a path change.
	baseBytes float64
}

type tracked struct {
	hash      uint64 // t's, under the tracker's seed
	t         tuple
	hops      []hopSeen // in inline while they fit: one allocation and one cache miss fewer
	last      float64
	first     float64
	slot      int     // in the tracker's ring; -1 once removed
	epoch     float64 // when its current path began: its first sample, or its last change
	pastBytes float64 // bytes it sent on its earlier paths
	// history holds its earlier paths, oldest first, at most maxHistory.
	history []pathEpoch
	// contested is set while two agents have sampled it at one TTL: a path
	// change, or ECMP inside one 5-tuple (a conflict), for detectChanges to
	// look at.
	contested bool
	// gone are the hops of its last path, left at its last change: samples
	// of theirs that an agent held and sent after the change was raised
	// are counted there, not taken for a move back.
	gone     []hopSeen
	goneAt   float64
	goneHold float64 // how long after goneAt such late samples may come
	// inline holds the first hops: a fabric path is a few hops, and a
	// switch that samples a flow at ingress and egress sees it twice.
	inline [2]hopSeen
}

// pathEpoch is a path a 5-tuple took, and when.
type pathEpoch struct {
	hops     []hopSeen
	from, to float64
}

// maxHistory bounds the earlier paths kept for one 5-tuple.
const maxHistory = 8

// agentClock is what the tracker knows of an agent's export cadence: when
// its latest datagram arrived, and how often they come. Every sample an
// agent took before it sent a datagram is in that datagram or an earlier
// one, so a hop the agent has not reported since, in datagrams that came
// after, has been silent at least that long, however long the agent holds
// its datagrams.
type agentClock struct {
	seq      uint32  // its latest datagram's sequence number
	sub      uint32  // and sub-agent
	last     float64 // when it arrived
	prev     float64 // when the one before it arrived
	interval float64 // smoothed time between its datagrams
	// slowest is the longest time between its datagrams lately (it fades
	// over a minute): how long it may hold a sample. An agent that was busy
	// sends full datagrams at once, and the same agent with little to send
	// holds one until its export timer, so the mean says too little.
	slowest float64
	// up is its latest datagram's uptime (the agent's own clock, in ms, at
	// sending); upBefore the latest uptime before it. The samples of a
	// datagram were taken after the agent sent the one before, and bursts
	// of datagrams (full ones sent together, or queued behind a busy
	// collector) arrive together: the agent's clock says how long its
	// samples were held where arrival times cannot.
	up, upBefore uint32
	upSeen       bool // up is known
	upSpan       bool // and upBefore
}

// heldSince is the earliest moment, on the engine's clock, that the samples
// of the agent's latest datagram (arrived at now) were taken: the span of
// its own clock since its datagram before, capped at windowFloor (no agent
// holds a sample longer), and windowFloor when that is unknown.
func (ac *agentClock) heldSince(now float64) float64 {
	if ac == nil || !ac.upSpan {
		return now - windowFloor
	}
	return now - min(float64(ac.up-ac.upBefore)/1000, windowFloor)
}

// maxAgentClocks bounds the agents whose cadence is kept; past it, the
// idle ones are let go first.
const maxAgentClocks = 65536

// maxHopsSeen bounds the observations of one 5-tuple: a path longer than
// this is no fabric path.
const maxHopsSeen = 32

type pathTracker struct {
	seed      maphash.Seed
	flows     hashIndex[tracked]  // by hash
	byPair    map[pair][]*tracked // a pair's 5-tuples: few, so a slice
	ring      []*tracked          // every 5-tuple, for the eviction clock
	contested []*tracked          // those with two agents at one TTL
	hand      int
	max       int
	evicted   uint64
	agents    map[netip.Addr]*agentClock
	recent    *agentClock // the agent of the last datagram heard
	recentAt  netip.Addr
}

func (pt *pathTracker) init(max int) {
	pt.seed = maphash.MakeSeed()
	pt.byPair = map[pair][]*tracked{}
	pt.agents = map[netip.Addr]*agentClock{}
	pt.max = max
}

// heard notes a datagram's arrival from its agent: once per datagram, by
// its sequence number.
func (pt *pathTracker) heard(dg *decode.Datagram, now float64) {
	ac := pt.recent
	if ac == nil || pt.recentAt != dg.Agent {
		ac = pt.agents[dg.Agent]
		if ac == nil {
			if len(pt.agents) >= maxAgentClocks {
				for a, c := range pt.agents {
					if now-c.last > pathMaxAge {
						delete(pt.agents, a)
					}
				}
				if len(pt.agents) >= maxAgentClocks {
					return // a flood of agents: their hops age by the floor alone
				}
			}
			ac = &agentClock{seq: dg.Sequence - 1, sub: dg.SubAgentID, last: now, interval: -1}
			pt.agents[dg.Agent] = ac
		}
		pt.recent, pt.recentAt = ac, dg.Agent
	}
	if ac.seq == dg.Sequence && ac.sub == dg.SubAgentID {
		return // another sample of the same datagram
	}
	dt := min(now-ac.last, 30)
	switch {
	case ac.interval < 0:
		ac.interval = 0 // its first datagram: no interval yet
	case ac.interval == 0:
		ac.interval, ac.slowest = dt, dt
	default:
		ac.interval += (dt - ac.interval) / 8
		ac.slowest = max(dt, ac.slowest*decay(dt/slowestFades))
	}
	ac.seq, ac.sub, ac.prev, ac.last = dg.Sequence, dg.SubAgentID, ac.last, now
	switch {
	case !ac.upSeen || dg.Uptime < ac.up:
		ac.upSpan = false // its first datagram, or it restarted
	case dg.Uptime > ac.up:
		ac.upBefore, ac.upSpan = ac.up, true
	}
	ac.up, ac.upSeen = dg.Uptime, true
}

// Freshness. An agent holds a sample at most about its datagram interval
// before sending it (a busy agent fills datagrams fast, an idle one sends
// on its export timer), so a hop still on the path shows up within that
// hold plus a few of its own sample gaps. A hop leaves a 5-tuple's path
// once it has been silent for quiet: quietGaps of its mean time between
// samples (at least minQuiet; its agent's window, max(windowFloor,
// windowIntervals of its datagram interval), while the gap is unknown),
// either in datagrams its agent sent since, or in wall time past the
// agent's hold (its slowest interval lately, at least holdIntervals of its
// mean interval). The live path also leaves
// out a hop that another agent at its TTL has outlasted by fadeGaps past
// the hold: the flow moved, and the change is about to be raised.
const (
	quietGaps       = 10
	minQuiet        = 0.5
	fadeGaps        = 5
	minFade         = 0.2
	windowFloor     = 2.0
	windowIntervals = 3
	holdIntervals   = 1.5
	slowestFades    = 60.0 // seconds
)

// gap is a hop's mean time between samples: its own, once it has a few,
// else the tuple's best-sampled hop's; +Inf when neither knows.
func (tr *tracked) gap(h *hopSeen) float64 {
	if h.samples >= 3 && h.last > h.first {
		return (h.last - h.first) / float64(h.samples-1)
	}
	best := h
	for i := range tr.hops {
		if x := &tr.hops[i]; x.samples > best.samples {
			best = x
		}
	}
	if best.samples >= 3 && best.last > best.first {
		return (best.last - best.first) / float64(best.samples-1)
	}
	return math.Inf(1)
}

// clock returns what the tracker knows of an agent's cadence: the time it
// was last heard from (or then, if unknown), how long it may hold a
// sample, and its freshness window.
func (pt *pathTracker) clock(agent netip.Addr, then float64) (last, hold, window float64) {
	if ac := pt.agents[agent]; ac != nil && ac.interval >= 0 {
		return ac.last, max(holdIntervals*ac.interval, ac.slowest), max(windowFloor, windowIntervals*ac.interval)
	}
	return then, windowFloor, windowFloor
}

// quietFor is how long something sampled every gap (on average) must be
// silent to have stopped: quietGaps of its gap, at least minQuiet; the
// window while its gap is unknown (+Inf).
func quietFor(gap, window float64) float64 {
	if math.IsInf(gap, 1) {
		return window
	}
	return max(minQuiet, quietGaps*gap)
}

// silentInReports says whether something last sampled at last has been
// silent for q both in wall time and in the datagrams its agent sent since
// (the agent was last heard at heard).
func silentInReports(last, heard, q, now float64) bool {
	return now-last >= q && min(heard, now)-last >= q
}

// stale says whether a hop has left the tuple's path by now: silent for
// its quiet in its agent's reports, or in wall time past the agent's hold.
func (pt *pathTracker) stale(tr *tracked, h *hopSeen, now float64) bool {
	heard, hold, window := pt.clock(h.agent, h.last)
	q := quietFor(tr.gap(h), window)
	return silentInReports(h.last, heard, q, now) || now-h.last >= q+hold
}

// rivals says whether two hops of one tuple contend for one place: the
// same TTL at two agents, neither a host's own egress (which shares its
// leaf's TTL). Two rivals are a path change, or a conflict.
func rivals(a, b *hopSeen) bool {
	return a.ttl == b.ttl && a.agent != b.agent && !internal(a) && !internal(b)
}

// ended says whether a tuple went quiet as a whole: even the hop of its
// last sample has left its path.
func (pt *pathTracker) ended(tr *tracked, now float64) bool {
	for i := range tr.hops {
		if h := &tr.hops[i]; h.last == tr.last && !pt.stale(tr, h, now) {
			return false
		}
	}
	return true
}

// live returns the hops on a tuple's path as of at: neither stale nor
// fading behind another agent at their TTL. For a tuple that went quiet as
// a whole (ended), at is its last sample: it keeps the path it had then.
func (pt *pathTracker) live(tr *tracked, at float64) []*hopSeen {
	out := make([]*hopSeen, 0, len(tr.hops))
	for i := range tr.hops {
		h := &tr.hops[i]
		if pt.stale(tr, h, at) {
			continue
		}
		if tr.contested && pt.fading(tr, h, at) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// fading says whether another agent kept reporting the tuple at a hop's
// TTL for longer after the hop's last sample than the hop's agent holds
// samples, plus fadeGaps of its gaps.
func (pt *pathTracker) fading(tr *tracked, h *hopSeen, now float64) bool {
	if internal(h) {
		return false
	}
	_, hold, _ := pt.clock(h.agent, h.last)
	outlast := hold + max(minFade, fadeGaps*tr.gap(h))
	for i := range tr.hops {
		if b := &tr.hops[i]; rivals(b, h) && b.last-h.last >= outlast && !pt.stale(tr, b, now) {
			return true
		}
	}
	return false
}

// internal says whether a hop is a host's own egress: its input is the
// host itself, and it shares its TTL with the leaf it sends to.
func internal(h *hopSeen) bool { return h.in.Value == decode.IfIndexInternal }

// tupleHash is a sample's 5-tuple and its hash; ok is false when the
// sample has no IP header.
type tupleHash struct {
	t    tuple
	hash uint64
	ok   bool
}

func (pt *pathTracker) hashTuple(fs *decode.FlowSample) tupleHash {
	p := &fs.RawHeader.Packet
	if p.Layers&(decode.LayerIPv4|decode.LayerIPv6) == 0 {
		return tupleHash{}
	}
	t := tuple{src: p.Src, dst: p.Dst, proto: p.Protocol}
	if p.Layers&(decode.LayerTCP|decode.LayerUDP) != 0 {
		t.sport, t.dport = p.SrcPort, p.DstPort
	}
	return tupleHash{t, t.hash(pt.seed), true}
}

// observe records a sample's hop. Only a new 5-tuple allocates.
func (pt *pathTracker) observe(dg *decode.Datagram, fs *decode.FlowSample, th tupleHash, frameBytes, now float64) {
	if !th.ok {
		return
	}
	p := &fs.RawHeader.Packet
	t, h := th.t, th.hash
	var tr *tracked
	for i, mask := pt.flows.probe(h); pt.flows.slots[i].item != nil; i = (i + 1) & mask {
		if s := &pt.flows.slots[i]; s.hash == h && s.item.t == t {
			tr = s.item
			break
		}
	}
	if tr == nil {
		if pt.flows.len() >= pt.max {
			pt.evict()
		}
		tr = &tracked{t: t, hash: h, first: now, epoch: now, slot: len(pt.ring)}
		tr.hops = tr.inline[:0]
		pt.flows.insert(h, tr)
		pr := pair{t.src, t.dst}
		pt.byPair[pr] = append(pt.byPair[pr], tr)
		pt.ring = append(pt.ring, tr)
	}
	tr.last = now
	for i := range tr.hops {
		h := &tr.hops[i]
		if h.agent == dg.Agent && h.ttl == p.TTL && h.in == fs.Input && h.out == fs.Output {
			h.samples++
			h.bytes += frameBytes
			h.last = now
			return
		}
	}
	if tr.gone != nil {
		if now-tr.goneAt <= tr.goneHold {
			for i := range tr.gone {
				if g := &tr.gone[i]; g.agent == dg.Agent && g.ttl == p.TTL && g.in == fs.Input && g.out == fs.Output {
					g.samples++ // held before the change, sent after it was raised
					return
				}
			}
		} else {
			tr.gone = nil
		}
	}
	if len(tr.hops) < maxHopsSeen {
		tr.hops = append(tr.hops, hopSeen{agent: dg.Agent, in: fs.Input, out: fs.Output, ttl: p.TTL,
			samples: 1, bytes: frameBytes, first: now, last: now})
		if nh := &tr.hops[len(tr.hops)-1]; !tr.contested {
			for i := range tr.hops[:len(tr.hops)-1] {
				if rivals(&tr.hops[i], nh) {
					tr.contested = true
					pt.contested = append(pt.contested, tr)
					break
				}
			}
		}
	}
}

// bytes estimates what a tuple sent on its current path, and over its
// life: from its best-sampled hop, not a sum over hops, since every hop
// saw the same bytes.
func (tr *tracked) bytes() (current, total float64) {
	var best *hopSeen
	for i := range tr.hops {
		if h := &tr.hops[i]; h.last >= tr.epoch && (best == nil || h.bytes-h.baseBytes > best.bytes-best.baseBytes) {
			best = h
		}
	}
	if best != nil {
		current = best.bytes - best.baseBytes
	}
	return current, tr.pastBytes + current
}

// evict drops the stalest of the next few 5-tuples under the clock hand:
// a fixed cost however many are tracked.
func (pt *pathTracker) evict() {
	var victim *tracked
	for range min(16, len(pt.ring)) {
		pt.hand = (pt.hand + 1) % len(pt.ring)
		if tr := pt.ring[pt.hand]; victim == nil || tr.last < victim.last {
			victim = tr
		}
	}
	if victim != nil {
		pt.remove(victim)
		pt.evicted++
	}
}

func (pt *pathTracker) remove(tr *tracked) {
	pt.flows.remove(tr.hash, tr)
	pr := pair{tr.t.src, tr.t.dst}
	list := pt.byPair[pr]
	for i, x := range list {
		if x == tr {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(pt.byPair, pr)
	} else {
		pt.byPair[pr] = list
	}
	last := pt.ring[len(pt.ring)-1]
	pt.ring[tr.slot], last.slot = last, tr.slot
	pt.ring[len(pt.ring)-1] = nil
	pt.ring = pt.ring[:len(pt.ring)-1]
	tr.slot = -1 // detectChanges lets it go from the contested list
}

// expire drops 5-tuples not sampled for maxAge seconds.
func (pt *pathTracker) expire(now, maxAge float64) {
	// Backwards, since a removal moves the ring's last 5-tuple, already
	// seen, into the gap.
	for i := len(pt.ring) - 1; i >= 0; i-- {
		if tr := pt.ring[i]; now-tr.last > maxAge {
			pt.remove(tr)
		}
	}
}

// hash is the tuple's hash under seed, over a pointer-free copy: hashing
// netip.Addr itself would move it to the heap.
func (t tuple) hash(seed maphash.Seed) uint64 {
	var b [37]byte
	*(*[16]byte)(b[0:]) = t.src.As16()
	*(*[16]byte)(b[16:]) = t.dst.As16()
	b[32] = t.proto
	b[33], b[34], b[35], b[36] = byte(t.sport>>8), byte(t.sport), byte(t.dport>>8), byte(t.dport)
	return maphash.Comparable(seed, b)
}

// Event names of fabrictrace's own events, raised through /events/json.
const (
	EventPathChange = "pathchange"
	EventCollision  = "collision"
)

// detectChanges raises a pathchange event for each 5-tuple whose node at
// some TTL fell silent (stale) while another node at that TTL kept
// reporting: the flow moved. It does not depend on the order in which the
// two nodes' samples arrived, which export delay scrambles. The old path
// goes to the tuple's history, and its hops are forgotten, so that the
// move back is a change too. Only tuples with two agents at one TTL are
// looked at.
func (e *Engine) detectChanges(now float64) {
	pt := &e.paths
	keep := pt.contested[:0]
	for _, tr := range pt.contested {
		if tr.slot < 0 {
			tr.contested = false
			continue // evicted or expired
		}
		e.detectChange(tr, now)
		if tr.contested = twoAtOneTTL(tr.hops); tr.contested {
			keep = append(keep, tr)
		}
	}
	clear(pt.contested[len(keep):])
	pt.contested = keep
}

func twoAtOneTTL(hops []hopSeen) bool {
	for i := range hops {
		for j := i + 1; j < len(hops); j++ {
			if rivals(&hops[i], &hops[j]) {
				return true
			}
		}
	}
	return false
}

func (e *Engine) detectChange(tr *tracked, now float64) {
	pt := &e.paths
	stale := make([]bool, len(tr.hops))
	for i := range tr.hops {
		stale[i] = pt.stale(tr, &tr.hops[i], now)
	}
	// The replaced hop that fell silent last, and its replacement.
	var old, repl *hopSeen
	for i := range tr.hops {
		a := &tr.hops[i]
		if !stale[i] {
			continue
		}
		for j := range tr.hops {
			b := &tr.hops[j]
			if !stale[j] && rivals(a, b) && b.last > a.last {
				if old == nil || a.last > old.last {
					old, repl = a, b
				}
			}
		}
	}
	if old == nil {
		return
	}
	// Every hop of the old path goes with it, stale or not yet: one its
	// TTL's newer hop outlasts (a flow moves all its hops at once, and the
	// agents of some report the silence before others do).
	for i := range tr.hops {
		h := &tr.hops[i]
		if stale[i] || internal(h) {
			continue
		}
		for j := range tr.hops {
			if b := &tr.hops[j]; j != i && b.ttl == h.ttl && !internal(b) && b.first > h.first && b.last > h.last && !stale[j] {
				stale[i] = true
				break
			}
		}
	}
	// The old path: those hops, and the live ones at TTLs where none of
	// them stands. The new one: the live hops.
	var before, after []hopSeen
	staleAt := map[uint8]bool{}
	for i := range tr.hops {
		if stale[i] && !internal(&tr.hops[i]) {
			staleAt[tr.hops[i].ttl] = true
		}
	}
	for i, h := range tr.hops {
		switch {
		case stale[i]:
			before = append(before, h)
		default:
			after = append(after, h)
			if !staleAt[h.ttl] || internal(&h) {
				before = append(before, h)
			}
		}
	}
	// When it changed: between the old hop's last sample and the new one's
	// first, whichever arrived first (export delay may reorder them); at
	// the old hop's last when the new one was there before it (a flow back
	// from a brief detour).
	at := (old.last + repl.first) / 2
	if repl.first < old.first {
		at = old.last
	}
	if at < tr.epoch {
		at = tr.epoch
	}
	// What it sent on the old path: its best-sampled hop that ended with
	// it (a hop it kept counts on, into the new path's time).
	var oldBytes float64
	for i := range tr.hops {
		if h := &tr.hops[i]; stale[i] {
			oldBytes = max(oldBytes, h.bytes-h.baseBytes)
		}
	}
	beforeHops, _ := e.assemble(ptrs(before))
	afterHops, _ := e.assemble(ptrs(after))
	if len(tr.history) == maxHistory {
		tr.history = append(tr.history[:0], tr.history[1:]...)
	}
	tr.history = append(tr.history, pathEpoch{hops: before, from: tr.epoch, to: at})
	tr.pastBytes += oldBytes
	tr.epoch = at
	for i := range after {
		if after[i].first < at {
			after[i].baseBytes = after[i].bytes // kept through the change
		}
	}
	tr.gone, tr.goneAt, tr.goneHold = tr.gone[:0], now, 0
	for i, h := range tr.hops {
		if stale[i] {
			tr.gone = append(tr.gone, h)
			_, hold, _ := pt.clock(h.agent, h.last)
			tr.goneHold = max(tr.goneHold, 2*hold)
		}
	}
	tr.hops = append(tr.hops[:0], after...)
	t := tr.t
	ev := Event{Timestamp: e.wall(now), ThresholdID: EventPathChange, Metric: "path",
		FlowKey: fmt.Sprintf("%s,%s,%d,%d,%d", t.src, t.dst, t.proto, t.sport, t.dport),
		OldPath: nodeNames(beforeHops), NewPath: nodeNames(afterHops), ChangedAt: e.wall(at)}
	if len(afterHops) > 0 {
		ev.Agent = afterHops[0].Agent
	}
	e.events.add(ev, func(ev *Event, id int64) { ev.EventID = id })
}

func ptrs(hs []hopSeen) []*hopSeen {
	out := make([]*hopSeen, len(hs))
	for i := range hs {
		out[i] = &hs[i]
	}
	return out
}

func nodeNames(hops []PathHop) []string {
	out := make([]string, len(hops))
	for i, h := range hops {
		out[i] = fmt.Sprintf("%s@%d", h.Node, h.TTL)
	}
	return out
}

// PathHop is one hop of a path.
type PathHop struct {
	TTL        uint8   `json:"ttl"`
	Node       string  `json:"node"`
	Agent      string  `json:"agent,omitempty"`
	In         string  `json:"in,omitempty"`
	Out        string  `json:"out,omitempty"`
	InIfIndex  string  `json:"inIfIndex,omitempty"`
	OutIfIndex string  `json:"outIfIndex,omitempty"`
	Samples    uint32  `json:"samples"`
	Bytes      float64 `json:"bytes"`
	// How the hop is known: "sampled"; "inferred" (not sampled, but a
	// topology link says which node must sit there); "missing" (not sampled
	// and not inferable); "l2" (a second node at one TTL: bridged, or a
	// conflict); "attributed" (the destination's host, from its BGP next
	// hop, when it exports no sFlow).
	Kind string `json:"kind"`
}

// PathFlow is one 5-tuple that took a path.
type PathFlow struct {
	Proto     uint8   `json:"proto"`
	SrcPort   uint16  `json:"srcPort"`
	DstPort   uint16  `json:"dstPort"`
	Bytes     float64 `json:"bytes"`     // on this path
	Total     float64 `json:"total"`     // over its life, earlier paths included
	LastSeen  int64   `json:"lastSeen"`  // ms ago
	FirstSeen int64   `json:"firstSeen"` // its first sample's arrival, ms since the epoch
}

// Path is one path a pair's traffic takes, with the 5-tuples on it.
type Path struct {
	Hops  []PathHop  `json:"hops"`
	Flows []PathFlow `json:"flows"`
	Bytes float64    `json:"bytes"` // the flows' bytes on it, each estimated once
	Share float64    `json:"share"` // of the pair's bytes
	// Complete: from the pair's first TTL to its destination with no hop
	// unaccounted for, and every hop live.
	Complete bool `json:"complete"`
}

// Paths is the answer for a src/dst pair: every path, biggest first, and
// where each end lives.
type Paths struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	Paths []Path     `json:"paths"`
	// ECMP: for each TTL where the paths part, the nodes and their shares.
	Split  []Split `json:"split,omitempty"`
	SrcEnd *Owner  `json:"srcOwner,omitempty"`
	DstEnd *Owner  `json:"dstOwner,omitempty"`
	// Elephants are the pair's live elephants: their rate now, with its
	// interval when their threshold has a confidence.
	Elephants []PairElephant `json:"elephants,omitempty"`
	// History (with PathQuery.History): every path each 5-tuple took, with
	// when, oldest first.
	History []PathEpoch `json:"history,omitempty"`
}

// PairElephant is an elephant of a pair, as /paths/json reports it.
type PairElephant struct {
	ElephantID  int64   `json:"elephantID"`
	ThresholdID string  `json:"thresholdID"`
	Threshold   float64 `json:"threshold"`
	Value       string  `json:"value"` // what the rates count: the flow's value (bytes, bps, frames, fps)
	Estimate
}

// PathEpoch is a path one 5-tuple took from one time to another.
type PathEpoch struct {
	Proto   uint8     `json:"proto"`
	SrcPort uint16    `json:"srcPort"`
	DstPort uint16    `json:"dstPort"`
	From    int64     `json:"from"`         // ms since the epoch
	To      int64     `json:"to,omitempty"` // absent while it is the path now
	Hops    []PathHop `json:"hops"`
}

// Split is where a pair's paths part: the nodes at one TTL and their shares.
type Split struct {
	TTL    uint8              `json:"ttl"`
	Shares map[string]float64 `json:"shares"`
	// Skewed is set when one node carries most (over 80 %) of the pair.
	Skewed bool `json:"skewed"`
}

// PathQuery selects a pair's 5-tuples: zero fields match any.
type PathQuery struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	History          bool // add every path each 5-tuple took
}

// maxHistoryAnswer bounds the history one answer carries, newest kept.
const maxHistoryAnswer = 200

// Paths returns the paths of a src/dst pair's sampled 5-tuples.
func (e *Engine) Paths(q PathQuery) (Paths, error) {
	if !q.Src.IsValid() || !q.Dst.IsValid() {
		return Paths{}, fmt.Errorf("%w: want a source and a destination address", ErrInvalid)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.topo.refresh(e.clock(), true)
	out := e.pathsLocked(q)
	out.Elephants = e.pairElephants(q.Src, q.Dst)
	return out, nil
}

// pairElephants are a pair's live elephants with their rates. It walks
// every active elephant, so only a query asks it, not each record.
func (e *Engine) pairElephants(src, dst netip.Addr) []PairElephant {
	now := e.clock()
	var out []PairElephant
	for _, el := range e.elephants.active {
		if el.src != src || el.dst != dst {
			continue
		}
		out = append(out, PairElephant{ElephantID: el.rec.ElephantID, ThresholdID: el.rec.ThresholdID,
			Threshold: el.threshold, Value: el.plan.def.Value, Estimate: el.rateNow(now)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ElephantID < out[j].ElephantID })
	return out
}

// pairPath is the biggest path of a pair, or nil.
func (e *Engine) pairPath(src, dst netip.Addr) []PathHop {
	if !src.IsValid() || !dst.IsValid() {
		return nil
	}
	ps := e.pathsLocked(PathQuery{Src: src, Dst: dst})
	if len(ps.Paths) == 0 {
		return nil
	}
	return ps.Paths[0].Hops
}

// pathsLocked answers Paths with the engine locked.
func (e *Engine) pathsLocked(q PathQuery) Paths {
	now := e.clock()
	out := Paths{Src: q.Src, Dst: q.Dst, SrcEnd: e.owner(q.Src), DstEnd: e.owner(q.Dst), Paths: []Path{}}
	type group struct {
		Path
		sampled int // hops sampled or inferred
		gaps    bool
	}
	groups := map[string]*group{}
	var order []string
	total := 0.0
	top, bottom := -1, 256 // the TTLs the pair is seen at, live
	// While any 5-tuple of the pair is live, the paths are theirs: one that
	// went quiet is history, not a path the pair takes now. When none is,
	// each keeps the path it had last.
	type candidate struct {
		tr    *tracked
		ended bool
	}
	var tuples []candidate
	anyLive := false
	for _, tr := range e.paths.byPair[pair{q.Src, q.Dst}] {
		t := tr.t
		if q.Proto != 0 && t.proto != q.Proto || q.SrcPort != 0 && t.sport != q.SrcPort || q.DstPort != 0 && t.dport != q.DstPort {
			continue
		}
		ended := e.paths.ended(tr, now)
		tuples = append(tuples, candidate{tr, ended})
		anyLive = anyLive || !ended
	}
	for _, c := range tuples {
		tr, t := c.tr, c.tr.t
		if q.History {
			for _, ep := range tr.history {
				hops, _ := e.assemble(ptrs(ep.hops))
				out.History = append(out.History, PathEpoch{Proto: t.proto, SrcPort: t.sport, DstPort: t.dport,
					From: e.wall(ep.from), To: e.wall(ep.to), Hops: hops})
			}
		}
		at := now
		if c.ended {
			if anyLive {
				continue
			}
			at = tr.last
		}
		live := e.paths.live(tr, at)
		if len(live) == 0 {
			continue
		}
		hops, gaps := e.assemble(live)
		if q.History {
			out.History = append(out.History, PathEpoch{Proto: t.proto, SrcPort: t.sport, DstPort: t.dport,
				From: e.wall(tr.epoch), Hops: hops})
		}
		for _, h := range live {
			top, bottom = max(top, int(h.ttl)), min(bottom, int(h.ttl))
		}
		sig := signature(hops)
		g := groups[sig]
		if g == nil {
			g = &group{Path: Path{Hops: hops}}
			for _, h := range hops {
				if h.Kind == "sampled" || h.Kind == "inferred" || h.Kind == "l2" {
					g.sampled++
				}
			}
			groups[sig] = g
			order = append(order, sig)
		} else {
			mergeHops(g.Hops, hops)
		}
		g.gaps = g.gaps || gaps
		cur, life := tr.bytes()
		g.Flows = append(g.Flows, PathFlow{Proto: t.proto, SrcPort: t.sport, DstPort: t.dport, Bytes: cur, Total: life,
			LastSeen: int64((now - tr.last) * 1000), FirstSeen: e.wall(tr.first)})
		g.Bytes += cur
		total += cur
	}
	// A 5-tuple sampled at only some of the hops of other paths, and
	// agreeing with them at each, took one of them: fold it in, its bytes
	// shared among them as theirs are. It is no path of its own.
	for _, sig := range order {
		small := groups[sig]
		var into []*group
		var intoBytes float64
		for _, other := range order {
			big := groups[other]
			if other == sig || big == nil || big.sampled <= small.sampled || !within(small.Hops, big.Hops) {
				continue
			}
			into = append(into, big)
			intoBytes += big.Bytes
		}
		if len(into) == 0 {
			continue
		}
		sort.Slice(into, func(i, j int) bool { return into[i].Bytes > into[j].Bytes })
		into[0].Flows = append(into[0].Flows, small.Flows...)
		add := small.Bytes
		for _, big := range into {
			if intoBytes > 0 {
				big.Bytes += add * big.Bytes / intoBytes
			} else {
				big.Bytes += add / float64(len(into))
			}
		}
		groups[sig] = nil
	}
	for _, sig := range order {
		g := groups[sig]
		if g == nil {
			continue
		}
		if total > 0 {
			g.Share = g.Bytes / total
		}
		g.Hops, g.Complete = e.endAtHost(g.Hops, out.DstEnd)
		g.Complete = g.Complete && !g.gaps && len(g.Hops) > 0 && int(g.Hops[0].TTL) == top &&
			(out.DstEnd != nil || int(g.Hops[len(g.Hops)-1].TTL) <= bottom)
		sort.Slice(g.Flows, func(i, j int) bool { return g.Flows[i].Bytes > g.Flows[j].Bytes })
		out.Paths = append(out.Paths, g.Path)
	}
	sort.Slice(out.Paths, func(i, j int) bool { return out.Paths[i].Bytes > out.Paths[j].Bytes })
	out.Split = splits(out.Paths)
	sort.Slice(out.History, func(i, j int) bool { return out.History[i].From < out.History[j].From })
	if n := len(out.History); n > maxHistoryAnswer {
		out.History = out.History[n-maxHistoryAnswer:]
	}
	return out
}

// endAtHost ends a path at the destination's host, as BGP names it (the
// next hop of its /32), when the host exports no sFlow of its own: right
// after the leaf that announced the route, or after that leaf inferred
// from the topology when the last hop's link reaches it. It says whether
// the path reaches the destination: a path whose last hop is neither the
// host nor a way to it stops short, and no host is placed at a TTL that
// cannot be known.
func (e *Engine) endAtHost(hops []PathHop, dst *Owner) ([]PathHop, bool) {
	if dst == nil || len(hops) == 0 {
		return hops, true
	}
	last := hops[len(hops)-1]
	host := dst.Host
	if host == "" && dst.NextHop.IsValid() {
		host = dst.NextHop.String()
	}
	switch {
	case last.InIfIndex != "internal" && last.OutIfIndex == "internal",
		dst.NextHop.IsValid() && last.Agent == dst.NextHop.String(), host != "" && last.Node == host:
		return hops, true // the host itself sampled it
	case dst.Gone != 0 || !dst.NextHop.IsValid():
		return hops, false // withdrawn: where it ended is unknown
	case last.TTL < 2:
		return hops, false
	case dst.AnnouncedBy != "" && last.Node == dst.AnnouncedBy, dst.Peer.IsValid() && last.Agent == dst.Peer.String():
		// The last hop announced the route (named, or its session comes
		// from its agent address): the host is next.
		return append(hops, PathHop{TTL: last.TTL - 1, Node: host, Kind: "attributed"}), true
	case dst.AnnouncedBy != "" && last.TTL >= 3 && e.topo.peerName(last.Agent, last.OutIfIndex) == dst.AnnouncedBy:
		return append(hops, PathHop{TTL: last.TTL - 1, Node: dst.AnnouncedBy, Kind: "inferred"},
			PathHop{TTL: last.TTL - 2, Node: host, Kind: "attributed"}), true
	}
	return hops, false
}

// assemble orders a 5-tuple's observations into hops by TTL, highest
// first, and marks what is missing; gaps says whether any TTL between the
// first hop and the last has no node.
func (e *Engine) assemble(obs []*hopSeen) (hops []PathHop, gaps bool) {
	// One observation per (agent, TTL): the most sampled ports.
	type key struct {
		agent netip.Addr
		ttl   uint8
	}
	best := map[key]*hopSeen{}
	for _, h := range obs {
		k := key{h.agent, h.ttl}
		if b := best[k]; b == nil || h.samples > b.samples {
			best[k] = h
		}
	}
	seen := make([]*hopSeen, 0, len(best))
	for _, h := range best {
		seen = append(seen, h)
	}
	// Highest TTL first; at one TTL, a host's own egress sample (its input
	// is internal) comes before the switch it sends to.
	sort.Slice(seen, func(i, j int) bool {
		a, b := seen[i], seen[j]
		if a.ttl != b.ttl {
			return a.ttl > b.ttl
		}
		ai, bi := internal(a), internal(b)
		if ai != bi {
			return ai
		}
		return a.agent.Less(b.agent)
	})
	for i, h := range seen {
		hop := e.pathHop(h)
		if i > 0 {
			prev := seen[i-1]
			switch {
			case prev.ttl == h.ttl && !internal(prev):
				hop.Kind = "l2"
			case prev.ttl > h.ttl+1:
				// Unsampled hops: what the previous hop's output link reaches,
				// if the topology says, then unknowns.
				for ttl := int(prev.ttl) - 1; ttl > int(h.ttl); ttl-- {
					gap := PathHop{TTL: uint8(ttl), Node: "?", Kind: "missing"}
					if ttl == int(prev.ttl)-1 {
						if node := e.topo.peerNode(prev.agent, prev.out); node != "" {
							gap.Node, gap.Kind = node, "inferred"
						}
					}
					if gap.Kind == "missing" {
						gaps = true
					}
					hops = append(hops, gap)
				}
			}
		}
		hops = append(hops, hop)
	}
	return hops, gaps
}

func (e *Engine) pathHop(h *hopSeen) PathHop {
	hop := PathHop{TTL: h.ttl, Node: e.topo.nodeName(h.agent), Agent: h.agent.String(), Samples: h.samples,
		Bytes: h.bytes, Kind: "sampled"}
	if hop.Node == "" {
		hop.Node = hop.Agent
	}
	hop.In, hop.InIfIndex = e.portName(h.agent, h.in)
	hop.Out, hop.OutIfIndex = e.portName(h.agent, h.out)
	return hop
}

// portName names a port: its port_name (or topology) name, and its ifIndex
// as text, or internal, unknown, multiple, discard.
func (e *Engine) portName(agent netip.Addr, p decode.Port) (name, index string) {
	v := e.portValue(p)
	if v.kind != num {
		return "", string(v.appendText(nil, e.strings))
	}
	index = fmt.Sprint(v.n)
	if src := e.sources[sourceKey{agent: agent, index: uint32(v.n)}]; src != nil && src.counters.name != "" {
		return src.counters.name, index
	}
	return e.topo.portName(agent, uint32(v.n)), index
}

func signature(hops []PathHop) string {
	var b strings.Builder
	for _, h := range hops {
		fmt.Fprintf(&b, "%d:%s/%s>%s;", h.TTL, h.Node, h.InIfIndex, h.OutIfIndex)
	}
	return b.String()
}

// within reports whether every sampled hop of small is on big, alike: the
// same node at the same TTL, through the same ports where both know them
// (an inferred hop knows none).
func within(small, big []PathHop) bool {
	same := func(a, b string) bool { return a == "" || b == "" || a == b }
	for _, h := range small {
		if h.Kind != "sampled" && h.Kind != "l2" {
			continue
		}
		found := false
		for _, b := range big {
			if b.TTL == h.TTL && b.Node == h.Node && same(b.InIfIndex, h.InIfIndex) && same(b.OutIfIndex, h.OutIfIndex) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func mergeHops(into, from []PathHop) {
	for i := range min(len(into), len(from)) {
		into[i].Samples += from[i].Samples
		into[i].Bytes += from[i].Bytes
	}
}

// splits finds the TTLs where a pair's paths go through different nodes,
// and each node's share of the pair's bytes there. A host and its leaf at
// one TTL on every path are no split.
func splits(paths []Path) []Split {
	type atTTL struct {
		sets  map[string]bool // the node sets the paths have at this TTL
		bytes map[string]float64
	}
	by := map[uint8]*atTTL{}
	var total float64
	for _, p := range paths {
		total += p.Bytes
		nodes := map[uint8][]string{}
		for _, h := range p.Hops {
			// A host's own egress shares its TTL with its leaf: consecutive
			// hops, not a split. Unknown and attributed hops part nothing.
			if h.Kind != "missing" && h.Kind != "attributed" && h.InIfIndex != "internal" {
				nodes[h.TTL] = append(nodes[h.TTL], h.Node)
			}
		}
		for ttl, ns := range nodes {
			a := by[ttl]
			if a == nil {
				a = &atTTL{sets: map[string]bool{}, bytes: map[string]float64{}}
				by[ttl] = a
			}
			sort.Strings(ns)
			a.sets[strings.Join(ns, ",")] = true
			for _, n := range ns {
				a.bytes[n] += p.Bytes
			}
		}
	}
	var out []Split
	for ttl, a := range by {
		if len(a.sets) < 2 || total == 0 {
			continue
		}
		s := Split{TTL: ttl, Shares: map[string]float64{}}
		for n, b := range a.bytes {
			s.Shares[n] = b / total
			s.Skewed = s.Skewed || b/total > 0.8
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TTL > out[j].TTL })
	return out
}

// collision is a link two or more elephants share, as reported.
type collision struct {
	sig   string   // its elephants' keys, joined
	flows []string // and apart
	start float64
}

// detectCollisions raises a collision event when two or more elephants
// enter a switch through the same port of a topology link: they share that
// link in that direction, as an ECMP hash collision puts them. It raises one
// event per link and set of elephants, and another, with its end, when the
// set breaks up (an elephant ended or moved off the link) or changes.
func (e *Engine) detectCollisions(now float64) {
	at := map[portRef]map[string]bool{}
	if len(e.topo.links) > 0 {
		for _, el := range e.elephants.active {
			for ent := range el.entries {
				k := portRef{ent.src.key.agent, ent.src.key.index}
				if ent.src.key.class != 0 || !e.topo.onLink(k.agent, k.ifIndex) {
					continue
				}
				if el.plan != nil && ent.valueAt(el.plan, now) < el.threshold {
					continue // no longer over the threshold here: it ended or moved
				}
				if at[k] == nil {
					at[k] = map[string]bool{}
				}
				at[k][el.rec.FlowKey] = true
			}
		}
	}
	if e.collisions == nil {
		e.collisions = map[portRef]*collision{}
	}
	raise := func(k portRef, c *collision, end float64) {
		ev := Event{Timestamp: e.wall(now), ThresholdID: EventCollision, Metric: "link", Agent: k.agent.String(),
			DataSource: fmt.Sprint(k.ifIndex), FlowKey: e.topo.links[k], Flows: c.flows, Start: e.wall(c.start)}
		if end > 0 {
			ev.End = e.wall(end)
		}
		e.events.add(ev, func(ev *Event, id int64) { ev.EventID = id })
	}
	// Ends first, so that a feed reads end, then the new set.
	for k, c := range e.collisions {
		set := at[k]
		if len(set) < 2 || sigOf(set) != c.sig {
			raise(k, c, now)
			delete(e.collisions, k)
		}
	}
	for k, set := range at {
		if len(set) < 2 || e.collisions[k] != nil {
			continue
		}
		c := &collision{sig: sigOf(set), start: now}
		for fk := range set {
			c.flows = append(c.flows, fk)
		}
		sort.Strings(c.flows)
		e.collisions[k] = c
		raise(k, c, 0)
	}
}

func sigOf(set map[string]bool) string {
	keys := make([]string, 0, len(set))
	for fk := range set {
		keys = append(keys, fk)
	}
	sort.Strings(keys)
	return strings.Join(keys, "|")
}

// Collisions returns the collisions live now, as their start events have
// them.
func (e *Engine) Collisions() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []Event{}
	for k, c := range e.collisions {
		out = append(out, Event{ThresholdID: EventCollision, Metric: "link", Agent: k.agent.String(),
			DataSource: fmt.Sprint(k.ifIndex), FlowKey: e.topo.links[k], Flows: c.flows, Start: e.wall(c.start)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FlowKey < out[j].FlowKey })
	return out
}
