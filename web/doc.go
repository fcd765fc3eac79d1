// Package web serves fabrictrace over HTTP: the sFlow-RT compatible REST API
// (flows, thresholds, long-poll events, active flows, agents, topology) plus
// fabrictrace's own /elephants/json. It reads from the flow engine, and from
// ingest's agent accounting through a function the collector hands it, and
// never reaches back into ingest or the socket.
package web
