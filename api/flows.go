package api

// ActiveFlow is one row of /activeflows.
type ActiveFlow struct {
	Key        string  `json:"key"`
	Value      float64 `json:"value"`
	Agent      string  `json:"agent"`
	DataSource string  `json:"dataSource"`
	FlowN      int     `json:"flowN"`
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
