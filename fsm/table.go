package fsm

import "strconv"

// Guard names a condition a row needs. Guards on rows that share From and
// Trigger are mutually exclusive, so exactly one row applies.
type Guard uint8

const (
	// NoGuard: the row always applies.
	NoGuard Guard = iota
	// RetriesLeft: this failure leaves attempts under Backoff.MaxAttempts
	// (always true when MaxAttempts is 0) and comes before the
	// Backoff.GiveUpAfter deadline.
	RetriesLeft
	// RetriesExhausted: this failure is attempt number MaxAttempts, or
	// comes at or past the GiveUpAfter deadline (Client.GaveUpCause says
	// which).
	RetriesExhausted
	// BelowErrorLimit: this error leaves the streak under Liveness.MaxErrors.
	BelowErrorLimit
	// AtErrorLimit: this error makes the streak reach Liveness.MaxErrors.
	AtErrorLimit
	// FloorPassed: Backoff.ReconnectFloor has passed since the latest
	// attempt started.
	FloorPassed
	// FloorPending: it has not.
	FloorPending
)

var guardNames = [...]string{
	NoGuard: "", RetriesLeft: "retriesLeft", RetriesExhausted: "retriesExhausted",
	BelowErrorLimit: "belowErrorLimit", AtErrorLimit: "atErrorLimit",
	FloorPassed: "floorPassed", FloorPending: "floorPending",
}

// String returns the guard's name, the bracketed label in diagrams.
func (g Guard) String() string {
	if int(g) < len(guardNames) {
		return guardNames[g]
	}
	return "Guard(" + strconv.Itoa(int(g)) + ")"
}

// Row is one edge of a lifecycle: in state From, Trigger leads to To when
// Guard holds. From == To is a re-entry (the state's bookkeeping runs again).
type Row struct {
	From    State
	Trigger Trigger
	To      State
	Guard   Guard
}

// Table is a lifecycle as data. It is the single source of truth: the
// runtime machine, the diagrams (Mermaid, DOT) and the simulator's
// oracles are all made from it.
type Table struct {
	Machine Machine // the lifecycle the table is
	Initial State   // the state a new instance starts in
	// States in display order; diagrams list them in this order.
	States []State
	// Terminal states accept no trigger.
	Terminal []State
	// Rows are the edges; rows that share From and Trigger have mutually
	// exclusive guards (Check).
	Rows []Row
}

// ClientTable returns the client connection lifecycle. Each call returns a
// fresh copy, so a caller may modify it (to draw a variant, say) without
// touching the machine the package runs.
func ClientTable() *Table {
	return &Table{
		Machine:  MachineClient,
		Initial:  Idle,
		States:   []State{Idle, Connecting, Connected, BackingOff, Rejected, GaveUp, Stopped},
		Terminal: []State{GaveUp, Stopped},
		Rows: []Row{
			{Idle, Start, Connecting, NoGuard},
			{Idle, Stop, Stopped, NoGuard},

			{Connecting, DialOK, Connected, NoGuard},
			{Connecting, DialFailed, BackingOff, RetriesLeft},
			{Connecting, DialFailed, GaveUp, RetriesExhausted},
			{Connecting, DialTimeout, BackingOff, RetriesLeft},
			{Connecting, DialTimeout, GaveUp, RetriesExhausted},
			{Connecting, Stop, Stopped, NoGuard},

			{Connected, Dropped, BackingOff, RetriesLeft},
			{Connected, Dropped, GaveUp, RetriesExhausted},
			{Connected, PongTimeout, BackingOff, RetriesLeft},
			{Connected, PongTimeout, GaveUp, RetriesExhausted},
			{Connected, Stop, Stopped, NoGuard},

			{BackingOff, RetryDue, Connecting, NoGuard},
			{BackingOff, Stop, Stopped, NoGuard},

			// Reconnect policy v2: permanent failures, reconnect-now, reset.
			{Connecting, GoAway, Rejected, RetriesLeft},
			{Connecting, GoAway, GaveUp, RetriesExhausted},
			{Connected, GoAway, Rejected, RetriesLeft},
			{Connected, GoAway, GaveUp, RetriesExhausted},
			{Connected, ResetBackoff, Connected, NoGuard},
			{BackingOff, ReconnectNow, Connecting, FloorPassed},
			{BackingOff, ReconnectNow, BackingOff, FloorPending},
			{BackingOff, ResetBackoff, BackingOff, NoGuard},
			{Rejected, RetryDue, Connecting, NoGuard},
			{Rejected, Stop, Stopped, NoGuard},
		},
	}
}

// SessionTable returns the server session lifecycle. Each call returns a
// fresh copy.
func SessionTable() *Table {
	rows := []Row{
		{Handshaking, Upgraded, Alive, NoGuard},
		{Handshaking, HandshakeFailed, Reaped, NoGuard},
		{Handshaking, HandshakeTimeout, Reaped, NoGuard},
		{Handshaking, ReadError, Reaped, NoGuard},
		{Handshaking, Shutdown, Reaped, NoGuard},
		{Handshaking, Fence, Reaped, NoGuard},

		{Suspect, Recovered, Alive, NoGuard},

		{Closing, Closed, Reaped, NoGuard},
		{Closing, CloseTimeout, Reaped, NoGuard},
		{Closing, PeerClose, Reaped, NoGuard},
		{Closing, ReadError, Reaped, NoGuard},
		{Closing, SendError, Reaped, NoGuard},
	}
	// Alive and Suspect react alike to everything but recovery: an error
	// streak and the fast, regular and idle failure tiers.
	for _, open := range []State{Alive, Suspect} {
		rows = append(rows,
			Row{open, ProtocolError, Suspect, BelowErrorLimit},
			Row{open, ProtocolError, Closing, AtErrorLimit},
			Row{open, SendError, Reaped, NoGuard},
			Row{open, ReadError, Reaped, NoGuard},
			Row{open, PeerClose, Reaped, NoGuard},
			Row{open, SlowConsumer, Reaped, NoGuard},
			Row{open, PongTimeout, Reaped, NoGuard},
			Row{open, IdleTimeout, Closing, NoGuard},
			Row{open, Shutdown, Closing, NoGuard},
			Row{open, Fence, Closing, NoGuard},
		)
	}
	return &Table{
		Machine:  MachineSession,
		Initial:  Handshaking,
		States:   []State{Handshaking, Alive, Suspect, Closing, Reaped},
		Terminal: []State{Reaped},
		Rows:     rows,
	}
}

// isTerminal reports whether s is one of the table's terminal states.
func (t *Table) isTerminal(s State) bool {
	for _, x := range t.Terminal {
		if x == s {
			return true
		}
	}
	return false
}

// has reports whether some row leaves From on trigger tr.
func (t *Table) has(from State, tr Trigger) bool {
	for _, r := range t.Rows {
		if r.From == from && r.Trigger == tr {
			return true
		}
	}
	return false
}

// Triggers returns the table's triggers, each once, in first-use order.
func (t *Table) Triggers() []Trigger {
	var out []Trigger
	seen := map[Trigger]bool{}
	for _, r := range t.Rows {
		if !seen[r.Trigger] {
			seen[r.Trigger] = true
			out = append(out, r.Trigger)
		}
	}
	return out
}
