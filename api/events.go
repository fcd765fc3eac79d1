package api

// Event is an event as /events/json serves it.
type Event struct {
	EventID     int64     `json:"eventID"`
	Timestamp   int64     `json:"timestamp"`
	ThresholdID string    `json:"thresholdID"`
	Metric      string    `json:"metric"`
	Agent       string    `json:"agent"`
	DataSource  string    `json:"dataSource"`
	Value       float64   `json:"value"`
	Threshold   float64   `json:"threshold"`
	FlowKey     string    `json:"flowKey,omitempty"`
	Values      []float64 `json:"values,omitempty"`
	// fabrictrace's own events: a pathchange has the path before and after,
	// node by node; a collision names the elephants sharing a link.
	OldPath []string `json:"oldPath,omitempty"`
	NewPath []string `json:"newPath,omitempty"`
	// ChangedAt is a pathchange's estimated time (ms since the epoch):
	// between the old hop's last sample and the new one's first.
	ChangedAt int64    `json:"changedAt,omitempty"`
	Flows     []string `json:"flows,omitempty"`
	// A collision's start (ms since the epoch), and its end on the event
	// that says it ended: an elephant ended or moved off the link.
	Start int64 `json:"start,omitempty"`
	End   int64 `json:"end,omitempty"`
}

// Event names of fabrictrace's own events, raised through /events/json.
const (
	EventPathChange = "pathchange"
	EventCollision  = "collision"
)
