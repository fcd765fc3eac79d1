package counters

import (
	"math"
	"testing"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
)

// Rates are the counters' growth over the time between two samples; a
// counter that went back (an agent restart) gives no new rate.
func TestInterfaceRates(t *testing.T) {
	var c Interface
	if _, ok := c.Metric("ifinoctets", 3); ok {
		t.Error("a metric before any counters")
	}
	c.Update(&decode.GenericInterface{IfSpeed: 1e9, InOctets: 1000, OutOctets: 5000, InUcastPkts: 10, IfStatus: 3}, 100)
	c.Update(&decode.GenericInterface{IfSpeed: 1e9, InOctets: 1000 + 12.5e6*10, OutOctets: 5000, InUcastPkts: 20, IfStatus: 1}, 110)
	for name, want := range map[string]any{"ifinoctets": 12.5e6, "ifinpkts": 1.0, "ifoutoctets": 0.0,
		"ifinutilization": 10.0, "ifspeed": 1e9, "ifindex": 3.0, "ifadminstatus": "up", "ifoperstatus": "down"} {
		if got, ok := c.Metric(name, 3); !ok || got != want {
			t.Errorf("%s = %v %v, want %v", name, got, ok, want)
		}
	}
	c.Update(&decode.GenericInterface{IfSpeed: 1e9, InOctets: 10, OutOctets: 5000}, 120) // reset
	if got, _ := c.Metric("ifinoctets", 3); got != 12.5e6 {
		t.Errorf("after a reset, ifinoctets %v: want the last rate kept", got)
	}
}

// CPU times become percentages of the time between two samples; 32-bit
// counters that wrap still give the right rate.
func TestHostCPUAndWrap(t *testing.T) {
	var h Host
	at := func(now float64, user, idle, contexts uint32) {
		h.Update(&decode.CounterSample{Records: decode.HasHostCPU,
			HostCPU: decode.HostCPU{LoadOne: 2.2, User: user, Idle: idle, Contexts: contexts}}, now)
	}
	at(10, math.MaxUint32-500, 1000, math.MaxUint32-99)
	if _, ok := h.Metric("cpu_user"); ok {
		t.Error("a CPU percentage from one sample")
	}
	at(20, 1500-501, 4000, 900) // user +1500 ms across the wrap, idle +3000
	for name, want := range map[string]float64{"cpu_user": 100.0 / 3, "cpu_idle": 200.0 / 3,
		"cpu_utilization": 100.0 / 3, "contexts": 100, "load_one": 2.2} {
		got, ok := h.Metric(name)
		if f, _ := got.(float64); !ok || math.Abs(f-want) > 1e-9 {
			t.Errorf("%s = %v %v, want %v", name, got, ok, want)
		}
	}
	if _, ok := h.Metric("mem_total"); ok {
		t.Error("memory metrics without a memory record")
	}
}

func TestRefsAndSummaries(t *testing.T) {
	for text, want := range map[string]Ref{
		"ifinoctets":       {Text: "ifinoctets", Agg: "max", Name: "ifinoctets"},
		"sum:2.1.load_one": {Text: "sum:2.1.load_one", Agg: "sum", DS: "2.1", Name: "load_one"},
		"q3:3.ifinoctets":  {Text: "q3:3.ifinoctets", Agg: "q3", DS: "3", Name: "ifinoctets"},
		"avg:my.flow.name": {Text: "avg:my.flow.name", Agg: "avg", Name: "my.flow.name"},
	} {
		if got, err := ParseRef(text); err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", text, got, err, want)
		}
	}
	for _, bad := range []string{"median:ifspeed", "max:", "3."} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	rows := []api.Metric{{Agent: "a", MetricValue: 1.0}, {Agent: "b", MetricValue: 2.0}, {Agent: "c", MetricValue: 3.0}, {Agent: "d", MetricValue: 10.0}}
	for text, want := range map[string]float64{"max:x": 10, "min:x": 1, "sum:x": 16, "avg:x": 4, "med:x": 2.5,
		"q1:x": 1.75, "q3:x": 4.75, "iqr:x": 3, "var:x": 12.5, "sdev:x": math.Sqrt(12.5)} {
		ref, _ := ParseRef(text)
		st := Summarise(ref, rows)
		if v, _ := st.MetricValue.(float64); math.Abs(v-want) > 1e-9 || st.MetricN != 4 {
			t.Errorf("%s = %+v, want %v", text, st, want)
		}
	}
}
