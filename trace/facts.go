package trace

// The facts a checker needs to judge a reap for a reason other than
// silence: what the peer sent (good or bad) and whether the send queue
// was really full. They number from 32 so the kinds above can grow
// without renumbering these (traces are compared byte for byte).
const (
	// Recv: an application message from the peer arrived on session ID
	// and decoded: activity (the idle tier counts both ways) and the end
	// of any streak of protocol errors.
	Recv Kind = iota + 32
	// BadRecv: a message from the peer arrived on session ID and could
	// not be used (undecodable, over a limit): one more protocol error in
	// a row. It is no activity.
	BadRecv
	// QueueFull: a write on session ID found its send queue at capacity:
	// the slow-consumer tier, after which the session may be reaped.
	QueueFull
)

var factNames = map[Kind]string{Recv: "recv", BadRecv: "bad_recv", QueueFull: "queue_full"}
