package trace

// The facts of a client's bounded outbox (fsm.Outbox, issue 13). Each
// names client ID and one message by its number in Inc (1, 2, ... per
// client run, in the order the application sent them, queued or not).
// They number from 64 so the kinds above can grow without renumbering
// these.
const (
	// OutboxQueued: client ID held message Inc, of Attempt bytes, in its
	// outbox (it had no link, or the outbox was not empty).
	OutboxQueued Kind = iota + 64
	// OutboxWritten: client ID committed message Inc to its link: taken
	// from the outbox, or written at once when it held nothing.
	OutboxWritten
	// OutboxDropped: client ID dropped message Inc from its outbox, for
	// the fsm.DropReason in Code.
	OutboxDropped
)

var outboxNames = map[Kind]string{OutboxQueued: "outbox_queued", OutboxWritten: "outbox_written", OutboxDropped: "outbox_dropped"}
