// Package tables holds flow definitions' rate tables: each flow is an
// Entry per data source whose value is a rate (a sample adds amount/tau,
// and the sum decays with time constant tau), found by the hash of its
// source and binary key in an open-addressing index, linked per source,
// and kept under a cap by evicting the smallest of the next few entries a
// clock hand passes. Entries fill 256 bytes, what a sample touches in the
// first two cache lines. A Table is generic in the engine's data source
// (S) and what its thresholds keep on an entry they fired (F), so that it
// knows neither; OnRemove tells the engine of each entry let go.
package tables
