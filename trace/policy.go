package trace

// The facts of the reconnect policy v2 (issue 13). They number from 48 so
// the kinds above can grow without renumbering these.
const (
	// Nudge: client ID's owner asked it to reconnect now (the network came
	// back, or a caller in a loop). Attempts it brings forward must keep
	// the reconnect-now floor.
	Nudge Kind = iota + 48
)

var policyNames = map[Kind]string{Nudge: "nudge"}
