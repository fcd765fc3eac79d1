package counters

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/fabrictrace/fabrictrace/api"
)

// Ref is a requested metric, "[agg:][ds.]name": max:ifinoctets,
// 2.1.load_one.
type Ref struct {
	Text, Agg, DS, Name string
}

// ParseRef reads a metric reference; the aggregate is max by default.
func ParseRef(text string) (Ref, error) {
	r := Ref{Text: text, Agg: "max"}
	rest := text
	if agg, name, ok := strings.Cut(rest, ":"); ok {
		switch agg {
		case "max", "min", "sum", "avg", "any", "var", "sdev", "med", "q1", "q2", "q3", "iqr":
		default:
			return r, fmt.Errorf("metric %q: aggregate %q: want max, min, sum, avg, var, sdev, med, q1, q2, q3, iqr or any", text, agg)
		}
		r.Agg, rest = agg, name
	}
	// A data source prefix is "N." or "N.M." before the name.
	if i := strings.LastIndexByte(rest, '.'); i > 0 && strings.Trim(rest[:i], "0123456789.") == "" {
		r.DS, rest = rest[:i], rest[i+1:]
	}
	r.Name = rest
	if r.Name == "" {
		return r, fmt.Errorf("metric %q: no name", text)
	}
	return r, nil
}

// Summary summarises one metric over the data sources that have it, by
// the reference's aggregate.
type Summary struct {
	ref        Ref
	st         api.Statistic
	sum, taken float64   // taken: the value of the source max or min took
	all        []float64 // for the spread and the quantiles
}

// NewSummary starts the summary of ref.
func NewSummary(ref Ref) *Summary { return &Summary{ref: ref} }

// Add counts one data source's metric, whose number is v (a flow's: its
// top key's value).
func (sb *Summary) Add(mt api.Metric, v float64) {
	st, ref := &sb.st, sb.ref
	st.MetricN++
	sb.sum += v
	if _, isNum := mt.MetricValue.(float64); isNum || mt.TopKeys != nil {
		sb.all = append(sb.all, v)
	}
	if st.MetricN == 1 {
		st.LastUpdateMin, st.LastUpdateMax = mt.LastUpdate, mt.LastUpdate
	}
	st.LastUpdateMin = min(st.LastUpdateMin, mt.LastUpdate)
	st.LastUpdateMax = max(st.LastUpdateMax, mt.LastUpdate)
	take := st.MetricN == 1 || ref.Agg == "max" && v > sb.taken || ref.Agg == "min" && v < sb.taken
	if take {
		sb.taken, st.Agent, st.DataSource, st.LastUpdate = v, mt.Agent, mt.DataSource, mt.LastUpdate
		st.MetricValue = mt.MetricValue
		if mt.TopKeys != nil {
			st.MetricValue = mt.TopKeys
		}
	}
}

// Finish returns the statistic.
func (sb *Summary) Finish() api.Statistic {
	st := sb.st
	st.MetricName = sb.ref.Text
	switch sb.ref.Agg {
	case "sum":
		st.MetricValue, st.Agent, st.DataSource = sb.sum, "", ""
	case "avg":
		if st.MetricN > 0 {
			st.MetricValue, st.Agent, st.DataSource = sb.sum/float64(st.MetricN), "", ""
		}
	case "var", "sdev", "med", "q1", "q2", "q3", "iqr":
		if len(sb.all) > 0 {
			st.MetricValue, st.Agent, st.DataSource = spread(sb.ref.Agg, sb.all), "", ""
		}
	}
	if st.Agent == "" && st.MetricN > 0 {
		st.LastUpdate = st.LastUpdateMin // of no one source: the freshest
	}
	return st
}

// Summarise is a summary of rows already gathered (as a dump returns
// them), from one engine or several.
func Summarise(ref Ref, rows []api.Metric) api.Statistic {
	sb := NewSummary(ref)
	for _, mt := range rows {
		v, _ := mt.MetricValue.(float64)
		if len(mt.TopKeys) > 0 {
			v = mt.TopKeys[0].Value
		}
		sb.Add(mt, v)
	}
	return sb.Finish()
}

// spread summarizes values as /metric's var: (population variance), sdev:,
// med: and q2: (the median), q1:, q3: (quartiles, interpolated between
// the sorted values) and iqr: (q3 - q1).
func spread(agg string, vs []float64) float64 {
	if agg == "var" || agg == "sdev" {
		var mean, sq float64
		for _, v := range vs {
			mean += v
		}
		mean /= float64(len(vs))
		for _, v := range vs {
			sq += (v - mean) * (v - mean)
		}
		if agg == "sdev" {
			return math.Sqrt(sq / float64(len(vs)))
		}
		return sq / float64(len(vs))
	}
	sort.Float64s(vs)
	q := func(p float64) float64 {
		x := p * float64(len(vs)-1)
		i := int(x)
		if i+1 >= len(vs) {
			return vs[len(vs)-1]
		}
		return vs[i] + (x-float64(i))*(vs[i+1]-vs[i])
	}
	switch agg {
	case "q1":
		return q(0.25)
	case "q3":
		return q(0.75)
	case "iqr":
		return q(0.75) - q(0.25)
	}
	return q(0.5)
}
