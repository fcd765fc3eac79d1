// Package flows is fabrictrace's flow engine: it turns decoded samples into
// sFlow-RT style flows (keys, values, filters), smoothed rates, top-N tables,
// thresholds and events. It reads samples from package ingest through the
// decode.Visitor interface and knows nothing of sockets or HTTP.
//
// The engine arrives with the flow-engine issue; until then the collector
// accounts for samples in package ingest only.
package flows
