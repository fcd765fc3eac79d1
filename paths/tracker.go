// Package paths rebuilds the path each sampled 5-tuple takes across the
// fabric. It keeps, for each 5-tuple, where its samples were taken: agent,
// ports and the TTL each switch saw. Ordered by TTL, highest first, those
// observations are the flow's hop-by-hop path, since each routed hop takes
// one off the TTL. It follows each agent's export cadence, so that a hop
// that fell silent leaves the path however long its agent holds samples,
// and raises a pathchange when a 5-tuple moves.
//
// A Tracker is not safe for concurrent use: its owner (the engine) locks.
package paths

import (
	"hash/maphash"
	"math"
	"net/netip"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/internal/hashindex"
)

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

// Tracked is one 5-tuple's observations.
type Tracked struct {
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

// Clock is what the tracker knows of an agent's export cadence: when
// its latest datagram arrived, and how often they come. Every sample an
// agent took before it sent a datagram is in that datagram or an earlier
// one, so a hop the agent has not reported since, in datagrams that came
// after, has been silent at least that long, however long the agent holds
// its datagrams.
type Clock struct {
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

// HeldSince is the earliest moment, on the engine's clock, that the samples
// of the agent's latest datagram (arrived at now) were taken: the span of
// its own clock since its datagram before, capped at WindowFloor (no agent
// holds a sample longer), and WindowFloor when that is unknown.
func (ac *Clock) HeldSince(now float64) float64 {
	if ac == nil || !ac.upSpan {
		return now - WindowFloor
	}
	return now - min(float64(ac.up-ac.upBefore)/1000, WindowFloor)
}

// maxAgentClocks bounds the agents whose cadence is kept; past it, the
// idle ones are let go first.
const maxAgentClocks = 65536

// maxHopsSeen bounds the observations of one 5-tuple: a path longer than
// this is no fabric path.
const maxHopsSeen = 32

type Tracker struct {
	seed      maphash.Seed
	flows     hashindex.Index[Tracked] // by hash
	byPair    map[pair][]*Tracked      // a pair's 5-tuples: few, so a slice
	ring      []*Tracked               // every 5-tuple, for the eviction clock
	contested []*Tracked               // those with two agents at one TTL
	hand      int
	max       int
	evicted   uint64
	agents    map[netip.Addr]*Clock
	recent    *Clock // the agent of the last datagram heard
	recentAt  netip.Addr
}

// MaxAge is how long a 5-tuple's path is kept after its last sample
// (seconds).
const MaxAge = 600

// New returns a tracker of at most max 5-tuples: past it, the stalest of
// a few go.
func New(max int) *Tracker {
	return &Tracker{seed: maphash.MakeSeed(), byPair: map[pair][]*Tracked{}, agents: map[netip.Addr]*Clock{}, max: max}
}

// decay is the weight left after x time constants.
func decay(x float64) float64 { return math.Exp(-x) }

// Clock returns what is known of an agent's export cadence, or nil.
func (pt *Tracker) Clock(agent netip.Addr) *Clock { return pt.agents[agent] }

// Last is when the agent's latest datagram arrived.
func (ac *Clock) Last() float64 { return ac.last }

// Len is how many 5-tuples are tracked.
func (pt *Tracker) Len() int { return pt.flows.Len() }

// Evicted counts the 5-tuples dropped to stay under the cap.
func (pt *Tracker) Evicted() uint64 { return pt.evicted }

// Heard notes a datagram's arrival from its agent: once per datagram, by
// its sequence number.
func (pt *Tracker) Heard(dg *decode.Datagram, now float64) {
	ac := pt.recent
	if ac == nil || pt.recentAt != dg.Agent {
		ac = pt.agents[dg.Agent]
		if ac == nil {
			if len(pt.agents) >= maxAgentClocks {
				for a, c := range pt.agents {
					if now-c.last > MaxAge {
						delete(pt.agents, a)
					}
				}
				if len(pt.agents) >= maxAgentClocks {
					return // a flood of agents: their hops age by the floor alone
				}
			}
			ac = &Clock{seq: dg.Sequence - 1, sub: dg.SubAgentID, last: now, interval: -1}
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
// samples (at least minQuiet; its agent's window, max(WindowFloor,
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
	WindowFloor     = 2.0
	windowIntervals = 3
	holdIntervals   = 1.5
	slowestFades    = 60.0 // seconds
)

// gap is a hop's mean time between samples: its own, once it has a few,
// else the tuple's best-sampled hop's; +Inf when neither knows.
func (tr *Tracked) gap(h *hopSeen) float64 {
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
func (pt *Tracker) clock(agent netip.Addr, then float64) (last, hold, window float64) {
	if ac := pt.agents[agent]; ac != nil && ac.interval >= 0 {
		return ac.last, max(holdIntervals*ac.interval, ac.slowest), max(WindowFloor, windowIntervals*ac.interval)
	}
	return then, WindowFloor, WindowFloor
}

// QuietFor is how long something sampled every gap (on average) must be
// silent to have stopped: quietGaps of its gap, at least minQuiet; the
// window while its gap is unknown (+Inf).
func QuietFor(gap, window float64) float64 {
	if math.IsInf(gap, 1) {
		return window
	}
	return max(minQuiet, quietGaps*gap)
}

// SilentInReports says whether something last sampled at last has been
// silent for q both in wall time and in the datagrams its agent sent since
// (the agent was last heard at heard).
func SilentInReports(last, heard, q, now float64) bool {
	return now-last >= q && min(heard, now)-last >= q
}

// stale says whether a hop has left the tuple's path by now: silent for
// its quiet in its agent's reports, or in wall time past the agent's hold.
func (pt *Tracker) stale(tr *Tracked, h *hopSeen, now float64) bool {
	heard, hold, window := pt.clock(h.agent, h.last)
	q := QuietFor(tr.gap(h), window)
	return SilentInReports(h.last, heard, q, now) || now-h.last >= q+hold
}

// rivals says whether two hops of one tuple contend for one place: the
// same TTL at two agents, neither a host's own egress (which shares its
// leaf's TTL). Two rivals are a path change, or a conflict.
func rivals(a, b *hopSeen) bool {
	return a.ttl == b.ttl && a.agent != b.agent && !internal(a) && !internal(b)
}

// ended says whether a tuple went quiet as a whole: even the hop of its
// last sample has left its path.
func (pt *Tracker) ended(tr *Tracked, now float64) bool {
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
func (pt *Tracker) live(tr *Tracked, at float64) []*hopSeen {
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
func (pt *Tracker) fading(tr *Tracked, h *hopSeen, now float64) bool {
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

// TupleHash is a sample's 5-tuple and its hash; ok is false when the
// sample has no IP header.
type TupleHash struct {
	t    tuple
	hash uint64
	ok   bool
}

// Home is the 5-tuple in th's home slot, where its lookup will start: what
// a caller that overlaps the cache misses of a batch loads first.
func (pt *Tracker) Home(th TupleHash) *Tracked {
	if !th.ok {
		return nil
	}
	return pt.flows.Home(th.hash)
}

// Touch loads what an observation of the 5-tuple reads, and returns a sum
// of it, so that the loads are not dropped: its hash and hops, then the
// first and last of them (hops true).
func (tr *Tracked) Touch(hops bool) uint64 {
	if !hops {
		return tr.hash + uint64(len(tr.hops))
	}
	if len(tr.hops) == 0 {
		return 0
	}
	return uint64(tr.hops[0].samples) + uint64(tr.hops[len(tr.hops)-1].samples)
}

// Hash finds a sample's 5-tuple and hashes it, once for every use.
func (pt *Tracker) Hash(fs *decode.FlowSample) TupleHash {
	p := &fs.RawHeader.Packet
	if p.Layers&(decode.LayerIPv4|decode.LayerIPv6) == 0 {
		return TupleHash{}
	}
	t := tuple{src: p.Src, dst: p.Dst, proto: p.Protocol}
	if p.Layers&(decode.LayerTCP|decode.LayerUDP) != 0 {
		t.sport, t.dport = p.SrcPort, p.DstPort
	}
	return TupleHash{t, t.hash(pt.seed), true}
}

// Observe records a sample's hop. Only a new 5-tuple allocates.
func (pt *Tracker) Observe(dg *decode.Datagram, fs *decode.FlowSample, th TupleHash, frameBytes, now float64) {
	if !th.ok {
		return
	}
	p := &fs.RawHeader.Packet
	t, h := th.t, th.hash
	var tr *Tracked
	for i, mask := pt.flows.Probe(h); pt.flows.Slots[i].Item != nil; i = (i + 1) & mask {
		if s := &pt.flows.Slots[i]; s.Hash == h && s.Item.t == t {
			tr = s.Item
			break
		}
	}
	if tr == nil {
		if pt.flows.Len() >= pt.max {
			pt.evict()
		}
		tr = &Tracked{t: t, hash: h, first: now, epoch: now, slot: len(pt.ring)}
		tr.hops = tr.inline[:0]
		pt.flows.Insert(h, tr)
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
func (tr *Tracked) bytes() (current, total float64) {
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
func (pt *Tracker) evict() {
	var victim *Tracked
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

func (pt *Tracker) remove(tr *Tracked) {
	pt.flows.Remove(tr.hash, tr)
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

// Expire drops 5-tuples not sampled for MaxAge seconds.
func (pt *Tracker) Expire(now float64) {
	const maxAge = MaxAge
	// Backwards, since a removal moves the ring's last 5-tuple, already
	// seen, into the gap.
	for i := len(pt.ring) - 1; i >= 0; i-- {
		if tr := pt.ring[i]; now-tr.last > maxAge {
			pt.remove(tr)
		}
	}
}

// Forget drops the 5-tuples of the address pairs drop says, as if they
// had expired (a partition given to another engine node), and says how
// many went.
func (pt *Tracker) Forget(drop func(src, dst netip.Addr) bool) int {
	n := 0
	for i := len(pt.ring) - 1; i >= 0; i-- {
		if tr := pt.ring[i]; drop(tr.t.src, tr.t.dst) {
			pt.remove(tr)
			n++
		}
	}
	return n
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
