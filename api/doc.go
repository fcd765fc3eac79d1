// Package api holds the shapes of fabrictrace's REST answers and bodies:
// the rows of /activeflows, events, elephants, paths, metrics and the
// topology, as JSON puts them on the wire. The engine fills them, the web
// server serves them, and clients (pathtrace, the quality scorer) read
// them, without importing the engine. It holds types only: no behaviour,
// no imports beyond the standard library's.
package api
