package api

// ActiveFlow is one row of /activeflows.
type ActiveFlow struct {
	Key        string  `json:"key"`
	Value      float64 `json:"value"`
	Agent      string  `json:"agent"`
	DataSource string  `json:"dataSource"`
	FlowN      int     `json:"flowN"`
}

// FlowLocation is one data source where a flow's key is seen now, as
// /flowlocations/{agent}/{name}/json serves it: the places a flow passes.
type FlowLocation struct {
	Agent      string  `json:"agent"`
	DataSource string  `json:"dataSource"`
	Value      float64 `json:"value"`
}

// FlowRecord is one logged flow, as /flows/json serves it.
type FlowRecord struct {
	FlowID     int64   `json:"flowID"`
	Name       string  `json:"name"`
	FlowKeys   string  `json:"flowKeys"`
	Value      float64 `json:"value"` // value units over [start, end]
	Start      int64   `json:"start"` // ms since the epoch
	End        int64   `json:"end"`
	Agent      string  `json:"agent"`
	DataSource string  `json:"dataSource"`
}
