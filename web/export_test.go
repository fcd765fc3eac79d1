package web

// SplitLists is splitLists, for tests.
var SplitLists = splitLists
