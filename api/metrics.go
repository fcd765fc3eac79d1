package api

// Metric is one metric of one data source, as /dump and /table serve it.
// Flow metrics carry their top keys instead of a value.
type Metric struct {
	Agent       string   `json:"agent"`
	DataSource  string   `json:"dataSource"`
	MetricName  string   `json:"metricName"`
	MetricValue any      `json:"metricValue,omitempty"`
	TopKeys     []TopKey `json:"topKeys,omitempty"`
	LastUpdate  int64    `json:"lastUpdate"` // ms ago
}

// TopKey is one of a flow's largest keys at a data source.
type TopKey struct {
	Key        string  `json:"key"`
	Value      float64 `json:"value"`
	LastUpdate int64   `json:"lastUpdate"` // ms ago
}

// Statistic is one metric summarised over the data sources that have it,
// as /metric/{agents}/{metrics}/json serves it.
type Statistic struct {
	Agent         string `json:"agent,omitempty"`
	DataSource    string `json:"dataSource,omitempty"`
	MetricName    string `json:"metricName"`
	MetricValue   any    `json:"metricValue,omitempty"`
	MetricN       int    `json:"metricN"`
	LastUpdate    int64  `json:"lastUpdate,omitempty"`
	LastUpdateMin int64  `json:"lastUpdateMin,omitempty"`
	LastUpdateMax int64  `json:"lastUpdateMax,omitempty"`
}
