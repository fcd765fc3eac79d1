// Package counters turns sFlow counter samples into sFlow-RT's metrics: an
// interface's counters (rates between samples, utilization, status) and a
// host's records (hsflowd's CPU, memory, disk and network), the metric
// names, the "[agg:][ds.]name" references /metric takes, and their
// summaries over data sources (max, sum, the quartiles...). It knows no
// engine: the flow engine keeps one Interface and, for hosts, one Host per
// data source, and asks them for metrics by name.
package counters
