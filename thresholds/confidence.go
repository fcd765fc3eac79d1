package thresholds

import (
	"math"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/paths"
	"github.com/fabrictrace/fabrictrace/tables"
)

// A threshold with a confidence (fabrictrace's own field; sFlow-RT has no
// such thing) does not judge each flow entry alone. It merges the evidence
// of every entry with the same identity: the same flow seen at every hop,
// its key differing only in location fields (node, port, TTL). Each hop's
// samples are a Poisson count whose mean is the flow's packet rate times
// the time the hop watched, over its sampling rate; so the merged rate is
// the hops' sampled units over their summed exposure, and the count of
// samples behind it bounds it. The threshold fires when the lower bound of
// that interval, at the stated confidence, is over the value, and re-arms
// once the upper bound has stayed under it for the timeout: the mirror
// rule, whose gap is the hysteresis.
//
// Exposure runs on each agent's own clock: from the moment it sent the
// datagram before the hop's first sample (an agent holds samples until it
// sends, so they may have been taken any time since; the datagrams' uptime
// says how long that was, where arrival times, bunched by bursts and by a
// busy collector, cannot) to the arrival of its latest one. A datagram
// that brings a second of held samples at once is then a second's worth
// of evidence, not a burst.

// evidenceTau is the time constant of the evidence: longer than a flow's
// own t, so that sparse sampling (1-in-10000) gathers enough samples.
const evidenceTau = 10.0

// candidateShare is the share of the threshold at which a flow entry starts
// gathering evidence: below it, a sample costs nothing more.
const candidateShare = 0.25

// evidence is one identity's merged evidence under one threshold.
type evidence[S any] struct {
	ident   string
	members []*member[S]
	fired   bool
	below   float64 // when its upper bound went under the value, or -1
	size    float64 // mean value units per packet, as last seen
	checked float64 // when the estimate was last worked out
	pending int     // samples since
	rate    float64 // then
	over    bool    // its upper bound over the value, then
	// since is when the flow was first sighted at any hop: every hop that
	// sees it in its first moments has watched it since, at least (a busy
	// agent's last datagram may be a moment before its first sample of a
	// flow that other hops saw a while ago).
	since float64
}

// member is one entry (one hop) of an identity's evidence.
type member[S any] struct {
	ent   *tables.Entry[S, Fired[S]]
	ev    *evidence[S]
	clock *paths.Clock     // its agent's, for exposure; nil if unknown
	count [windows]float64 // samples, decayed to at, over each of evidenceWindows
	units [windows]float64 // their value units per packet (unscaled by sampling), likewise
	at    float64          // its last sample (exposure ends there when its agent is unknown)
	start float64          // exposure begins
	// credited is when the exposure of the entry's samples from before it
	// joined begins, in the long window: the short ones judge only the
	// samples since, as their count and exposure decay alike only then.
	credited  float64
	perSample float64 // packets one sample stands for, lately
	n         float64 // samples since it (re)started, undecayed
	first     float64 // the first of them
}

// gap is a member's mean time between samples, over its whole watch: the
// arrivals of one datagram's samples come at once, so no smoothing of the
// times between arrivals would say it.
func (m *member[S]) gap() float64 {
	if m.n < 3 || m.at <= m.first {
		return math.Inf(1)
	}
	return (m.at - m.first) / (m.n - 1)
}

// watchedElsewhere says whether another member than m sees the flow now.
func (ev *evidence[S]) watchedElsewhere(m *member[S], now float64) bool {
	for _, o := range ev.members {
		if o != m && o.watching(now) {
			return true
		}
	}
	return false
}

// watching says whether a member still sees the flow: it has not been
// silent, in its agent's reports since, for its quiet (as a path's hop:
// paths.QuietFor; paths.WindowFloor while it has too few samples to tell).
func (m *member[S]) watching(now float64) bool {
	heard := now
	if m.clock != nil {
		heard = m.clock.Last()
	}
	return !paths.SilentInReports(m.at, heard, paths.QuietFor(m.gap(), paths.WindowFloor), now)
}

// zOf is the one-sided normal quantile of a confidence.
func zOf(confidence float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*confidence-1)
}

// poissonBounds bounds the mean of a Poisson count n, one-sided each way at
// quantile z (Wilson and Hilferty's approximation, good to a few percent
// from n = 1).
func poissonBounds(n, z float64) (low, high float64) {
	if n > 0 {
		c := 1 - 1/(9*n) - z/(3*math.Sqrt(n))
		low = n * max(c, 0) * max(c, 0) * max(c, 0)
	}
	m := n + 1
	c := 1 - 1/(9*m) + z/(3*math.Sqrt(m))
	return low, m * c * c * c
}

// evidenceWindows are the time constants the rule judges a flow over: the
// evidence's own (10 s), which sparse sampling needs, and two short ones
// that follow a flow's start or a change of rate at once, where the long
// one still holds what the pair sent before. A pair that sent at half the
// threshold and then at twice it is over the value within a second in the
// shortest (0.6 s) and not for 1.5 s in the 2 s one; a flow sampled a few
// times a second needs the 2 s one. It fires on any; the confidence is
// split between them (Bonferroni), so that the looks together keep it.
const windows = 3

var evidenceWindows = [windows]float64{evidenceTau, 2.0, 0.6}

// A flow's merged estimate is worked out every checkSamples of its samples
// or checkEvery, whichever comes first: against a detection in tenths of a
// second, nothing.
const (
	checkSamples = 8
	checkEvery   = 0.02
)

// Estimate merges the members' evidence as of now, over the long window.
//
// A hop that no longer sees the flow while another still does (the flow
// moved off it) watched only until its last sample: its exposure stops
// there, or it would dilute the rate. When no hop sees it, the flow went
// quiet: every hop's exposure runs on, and the rate decays.
func (ev *evidence[S]) Estimate(now, z float64) api.Estimate { return ev.estimateOver(now, z, 0) }

// estimateOver merges the members' evidence over window w (0 long, 1 short).
// The first sample of the flow, the one that started the watch, is not
// evidence of its rate (the inspection paradox): the count leaves it out.
func (ev *evidence[S]) estimateOver(now, z float64, w int) api.Estimate {
	tau := evidenceWindows[w]
	var n, units, expo float64
	anyWatching := false
	for _, m := range ev.members {
		if m.watching(now) {
			anyWatching = true
			break
		}
	}
	for _, m := range ev.members {
		d := tables.Decay((now - m.at) / tau)
		n += m.count[w] * d
		units += m.units[w] * d
		end := m.at
		if m.clock != nil {
			end = max(m.clock.Last(), m.at)
		}
		if anyWatching && !m.watching(now) {
			end = m.at
		}
		end = min(end, now)
		start := m.start
		if w == 0 {
			start = min(start, m.credited)
		}
		if end > start {
			expo += tau / m.perSample * (tables.Decay((now-end)/tau) - tables.Decay((now-start)/tau))
		}
	}
	if n > 0 {
		ev.size = units / n
	}
	if expo <= 0 {
		return api.Estimate{Samples: n}
	}
	counted := max(n-1, 0)
	low, high := poissonBounds(counted, z)
	return api.Estimate{Rate: ev.size * counted / expo, RateLow: ev.size * low / expo, RateHigh: ev.size * high / expo, Samples: n}
}

// lowOver says whether either window's lower bound is over the value,
// each at the confidence split in two.
func (ev *evidence[S]) lowOver(now, zSplit, value float64) bool {
	for w := range evidenceWindows {
		if ev.estimateOver(now, zSplit, w).RateLow > value {
			return true
		}
	}
	return false
}

// updateConfident is update for a byFlow threshold with a confidence.
func (th *State[S]) updateConfident(p *keys.Plan, ent *tables.Entry[S, Fired[S]], s *keys.Sample, now float64) {
	m := th.members[ent]
	if m == nil {
		if ent.Value < candidateShare*th.def.Value {
			return
		}
		m = th.join(p, ent, s, now)
	}
	scale := max(s.Scaled, 1)
	// A hop the flow comes back to (a link healed) did not watch it in
	// between: it starts afresh, from its agent's datagram before this one.
	if m.n > 0 && !m.watching(now) && m.ev.watchedElsewhere(m, now) {
		m.count, m.units, m.n = [windows]float64{}, [windows]float64{}, 0
		m.start = max(m.at, m.clock.HeldSince(now))
		m.credited = m.start
	}
	if m.n == 0 {
		m.first = now
	}
	m.n++
	for w, tau := range evidenceWindows {
		d := tables.Decay((now - m.at) / tau)
		m.count[w] = m.count[w]*d + 1
		m.units[w] = m.units[w]*d + p.Amount(p.Value, s)/scale
	}
	m.at, m.perSample = now, scale
	// Until it fires, every sample of the flow is a look at it; once it
	// has, its estimate is worked out every checkSamples samples or
	// checkEvery, not on each of an elephant's hundreds a second.
	ev := m.ev
	if !ev.fired {
		if ev.lowOver(now, th.zSplit, th.def.Value) {
			th.fireEvidence(p, ev, now)
		}
		return
	}
	if ev.pending++; ev.pending >= checkSamples || now-ev.checked >= checkEvery {
		ev.checked, ev.pending = now, 0
		est := ev.Estimate(now, th.z)
		ev.rate, ev.over = est.Rate, est.RateHigh >= th.def.Value
		if ev.over {
			ev.below = -1
		}
	}
	if f := firingOf(ent, th); f != nil {
		f.below = -1
		f.elephant.Seen(ent, ent.Value)
		f.elephant.Over(now, ev.rate, ev.over)
		return
	}
	// A hop that joined an identity already over the threshold: its event,
	// and a location of the elephant.
	th.fireMember(p, m, now)
}

// join makes an entry a member of its identity's evidence.
func (th *State[S]) join(p *keys.Plan, ent *tables.Entry[S, Fired[S]], s *keys.Sample, now float64) *member[S] {
	ident := string(p.Ident(ent.Key()))
	ev := th.evidence[ident]
	if ev == nil {
		ev = &evidence[S]{ident: ident, below: -1, since: now}
		th.evidence[ident] = ev
	}
	// Its samples may have been taken any time since the agent sent its
	// datagram before (its own clock says when); of an agent just heard
	// from for the first time, as long ago as any agent holds one
	// (paths.WindowFloor), for all that is known.
	m := &member[S]{ent: ent, ev: ev, at: now, perSample: max(s.Scaled, 1)}
	m.clock = th.env.Clock(s.Datagram.Agent)
	m.start = m.clock.HeldSince(now)
	// A hop that joins in the first moments of the flow has watched it since
	// its first sighting; one that joins later may be where the flow moved.
	if now-ev.since <= paths.WindowFloor {
		m.start = min(m.start, ev.since)
	}
	m.credited = m.start
	// The entry's recent samples count too: its value is a count of them
	// decayed over the flow's t, over an exposure as long as its burst (if
	// shorter), from as long before the burst's first arrival as the agent
	// holds a sample. Not its whole history: mice of the same pair before
	// an elephant would hold the estimate down for the evidence's 10 s.
	if amount := p.Amount(p.Value, s); amount > 0 {
		burst := max(now-ent.Since, 0)
		window := p.Tau * (1 - tables.Decay(burst/p.Tau))
		if n := ent.Value*p.Tau/amount - 1; n > 0 && window > 0 {
			m.count[0], m.units[0] = n, n*amount/m.perSample
			m.credited = min(m.start, m.clock.HeldSince(now)-window)
		}
	}

	ev.members = append(ev.members, m)
	th.members[ent] = m
	return m
}

// fireEvidence fires an identity: each of its hops over the candidate share
// gets its event, and the elephant starts with them as locations.
func (th *State[S]) fireEvidence(p *keys.Plan, ev *evidence[S], now float64) {
	ev.fired, ev.below = true, -1
	for _, m := range ev.members {
		th.fireMember(p, m, now)
	}
}

func (th *State[S]) fireMember(p *keys.Plan, m *member[S], now float64) {
	ent := m.ent
	if firingOf(ent, th) != nil {
		return
	}
	v := ent.ValueAt(p.Tau, now)
	th.byEntry[ent] = struct{}{}
	th.fire(p, ent, v)
	el := th.start(p, ent, v)
	el.Heard(now)
	fireOn(ent, Fired[S]{th: th, below: -1, elephant: el})
}

// sweepConfident re-arms identities whose upper bound stayed under the
// value for the timeout, and lets go of the evidence of flows that fell
// quiet without firing, so that it stays bounded by the table.
func (th *State[S]) sweepConfident(now float64) {
	for ident, ev := range th.evidence {
		est := ev.Estimate(now, th.z)
		if ev.fired {
			if est.RateHigh >= th.def.Value {
				ev.below = -1
				continue
			}
			if ev.below < 0 {
				ev.below = now
			}
			if now-ev.below < float64(th.def.Timeout) {
				continue
			}
			for _, m := range ev.members {
				if firingOf(m.ent, th) != nil {
					th.rearm(m.ent)
				}
				delete(th.members, m.ent)
			}
			delete(th.evidence, ident)
			continue
		}
		if est.Samples < 0.05 || est.RateHigh < candidateShare*th.def.Value {
			for _, m := range ev.members {
				delete(th.members, m.ent)
			}
			delete(th.evidence, ident)
		}
	}
}

// leaveEvidence drops an entry the table let go from its identity.
func (th *State[S]) leaveEvidence(ent *tables.Entry[S, Fired[S]]) {
	m := th.members[ent]
	if m == nil {
		return
	}
	delete(th.members, ent)
	ev := m.ev
	for i, x := range ev.members {
		if x == m {
			ev.members = append(ev.members[:i], ev.members[i+1:]...)
			break
		}
	}
	if len(ev.members) == 0 {
		delete(th.evidence, ev.ident)
	}
}
