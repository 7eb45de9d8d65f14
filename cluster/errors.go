package cluster

import (
	"errors"
	"fmt"

	"github.com/lifeline-go/lifeline/conn"
)

var (
	// ErrNoSuchSession is matched by every send to a session (or key) that
	// lives on no node: the NATS server answered "no responders" for a
	// node that holds no subscription, or the node answered that it holds
	// no such session. It comes back in one round trip, never by timeout.
	ErrNoSuchSession = errors.New("cluster: no such session")

	// ErrSessionClosed is matched by a *SessionClosedError: the session
	// exists but closed before the message was written.
	ErrSessionClosed = errors.New("cluster: session closed")

	// ErrUnreachable is matched by every *EngineError: the message may or
	// may not have been delivered because the engine (NATS) or the node
	// holding the session did not answer in time.
	ErrUnreachable = errors.New("cluster: engine unreachable")

	// ErrBadID is matched by a send to a string that is not a session id
	// of the form <node>.<inc>/<n> (node name, incarnation in base 36,
	// session number).
	ErrBadID = errors.New("cluster: malformed session id")

	// ErrNotRunning is returned by calls made before Run started the node
	// or after it returned.
	ErrNotRunning = errors.New("cluster: node not running")
)

// SessionClosedError reports a send to a session that was closing or was
// reaped before the message could be written. It matches both
// ErrSessionClosed and conn.ErrSessionClosed.
type SessionClosedError struct {
	ID     string // the cluster-wide id, <node>.<inc>/<n>
	Reason string // why it closed, as the holding node reported it ("" if unknown)
}

// Error names the session and, when known, why it closed.
func (e *SessionClosedError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("cluster: session %s closed before the message was written", e.ID)
	}
	return fmt.Sprintf("cluster: session %s closed before the message was written (%s)", e.ID, e.Reason)
}

// Is reports whether target is ErrSessionClosed or conn.ErrSessionClosed.
func (e *SessionClosedError) Is(target error) bool {
	return target == ErrSessionClosed || target == conn.ErrSessionClosed
}

// EngineError reports an operation the engine did not carry out or did not
// answer: a request that timed out, a disconnected NATS client, a JetStream
// call that failed.
type EngineError struct {
	Op  string // what was attempted ("send to n2/7", "renew lease", ...)
	Err error  // the engine's error
}

// Error names the operation and the engine's error.
func (e *EngineError) Error() string { return "cluster: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the engine's error.
func (e *EngineError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnreachable.
func (e *EngineError) Is(target error) bool { return target == ErrUnreachable }
