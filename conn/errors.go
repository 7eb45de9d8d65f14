package conn

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

var (
	// ErrNotConnected is matched (errors.Is) by every *NotConnectedError: a
	// Client was asked to send while it had no open link.
	ErrNotConnected = errors.New("conn: not connected")

	// ErrSessionClosed is matched by every *SessionClosedError: a send to a
	// session that is closing or was reaped, or to an unknown session id.
	ErrSessionClosed = errors.New("conn: session closed")

	// ErrGaveUp is matched by every *GaveUpError: the Backoff policy's
	// MaxAttempts consecutive attempts failed.
	ErrGaveUp = errors.New("conn: gave up reconnecting")

	// ErrServerClosed is returned by Server.Shutdown and Server.Close when
	// the server was already shut down.
	ErrServerClosed = errors.New("conn: server closed")

	// ErrClientUsed is returned by Client.Run when the client already ran:
	// a Client, like an http.Server after Shutdown, is not reused.
	ErrClientUsed = errors.New("conn: client already ran; create a new one")

	// ErrUnauthorized is what an Authorize hook returns for a request that
	// carries no credentials: the server answers 401 before the upgrade.
	ErrUnauthorized = errors.New("conn: unauthorized: no credentials")

	// ErrForbidden is what an Authorize hook returns for wrong credentials:
	// the server answers 403 before the upgrade. Any other error from the
	// hook is treated the same way.
	ErrForbidden = errors.New("conn: forbidden: wrong credentials")

	// ErrInvalidUTF8 is the cause logged when a peer sends a text message
	// that is not valid UTF-8: the session is reaped (read_error) and the
	// peer gets close code 1007, as RFC 6455 requires.
	ErrInvalidUTF8 = errors.New("conn: text message is not valid UTF-8")
)

// NotConnectedError reports a Client.Send made while the client had no open
// link. Nothing was sent or queued: the caller decides whether to retry.
type NotConnectedError struct {
	State fsm.State // the client's state when the send was refused
}

// Error says the send was refused and in which state.
func (e *NotConnectedError) Error() string {
	return fmt.Sprintf("conn: cannot send: client is %s, not Connected", e.State)
}

// Is reports whether target is ErrNotConnected.
func (e *NotConnectedError) Is(target error) bool { return target == ErrNotConnected }

// SessionClosedError reports a send to a session that can no longer carry
// application data.
type SessionClosedError struct {
	ID     uint64     // the session's id
	State  fsm.State  // Closing or Reaped; zero for an unknown id
	Reason fsm.Reason // why it closed, when known
}

// Error names the session, its state and, when known, why it closed.
func (e *SessionClosedError) Error() string {
	if e.State == 0 {
		return fmt.Sprintf("conn: session %d: no such open session", e.ID)
	}
	if e.Reason == fsm.NoReason {
		return fmt.Sprintf("conn: session %d is %s", e.ID, e.State)
	}
	return fmt.Sprintf("conn: session %d is %s (%s)", e.ID, e.State, e.Reason)
}

// Is reports whether target is ErrSessionClosed.
func (e *SessionClosedError) Is(target error) bool { return target == ErrSessionClosed }

// DialError is why one connection attempt failed: Attempt is its number (as
// fsm counts it), URL what it dialled, Err the dialer's error. Status is the HTTP status
// of a refused handshake (401, 403, 503, ...), zero when the failure came
// before or without an HTTP answer (refused port, DNS, TLS, timeout).
// RetryAfter is the wait the answer's Retry-After header asked for (zero
// for none, or for one that could not be read: the message then says
// why it was ignored); the client waits at least that long, up to
// Backoff.RetryAfterMax.
type DialError struct {
	Attempt    int
	URL        string
	Status     int
	RetryAfter time.Duration
	Err        error

	badRetryAfter error // why a Retry-After header was ignored
}

// Error names the attempt and either the refusing status or the cause.
func (e *DialError) Error() string {
	if e.Status != 0 {
		msg := fmt.Sprintf("attempt %d: %s answered HTTP %d %s instead of switching protocols",
			e.Attempt, e.URL, e.Status, http.StatusText(e.Status))
		switch {
		case e.RetryAfter > 0:
			msg += fmt.Sprintf(" (Retry-After %s)", e.RetryAfter)
		case e.badRetryAfter != nil:
			msg += fmt.Sprintf(" (Retry-After ignored: %v)", e.badRetryAfter)
		}
		return msg
	}
	return fmt.Sprintf("attempt %d: %v", e.Attempt, e.Err)
}

// Unwrap returns the dialer's error, so errors.Is sees through to it
// (context.DeadlineExceeded, syscall.ECONNREFUSED, ...).
func (e *DialError) Unwrap() error { return e.Err }

// errConnectTimeout is the cause recorded when an attempt outlives
// Backoff.ConnectTimeout; fsm, not the dialer, decides that it did.
type errConnectTimeout struct{ after time.Duration }

func (e errConnectTimeout) Error() string {
	return fmt.Sprintf("connect timeout: no handshake within %s", e.after)
}

// Timeout marks it as a net.Error-style timeout.
func (e errConnectTimeout) Timeout() bool { return true }

// errPongTimeout is the cause recorded when a connected server went silent.
type errPongTimeout struct{ silent time.Duration }

func (e errPongTimeout) Error() string {
	return fmt.Sprintf("server silent for %s (no pong): half-open link, blackhole or stopped server", e.silent)
}

func (e errPongTimeout) Timeout() bool { return true }

// GaveUpError is what Client.Run returns when the policy gave up: Cause
// says whether it ran out of attempts (fsm.GiveUpAttempts) or went
// Backoff.GiveUpAfter without a proven link (fsm.GiveUpOffline, Offline
// how long). Last is the error of the final attempt.
type GaveUpError struct {
	Attempts int             // attempts started since Run began (ClientStats.Attempts)
	Cause    fsm.GiveUpCause // which limit was reached
	Offline  time.Duration   // fsm.GiveUpOffline: how long without a proven link
	Last     error           // the final attempt's error
}

// Error says which limit was reached and the final attempt's error.
func (e *GaveUpError) Error() string {
	if e.Cause == fsm.GiveUpOffline {
		return fmt.Sprintf("conn: gave up after %s without a proven link (%d attempts); last: %v", e.Offline, e.Attempts, e.Last)
	}
	return fmt.Sprintf("conn: gave up after %d consecutive failed attempts; last: %v", e.Attempts, e.Last)
}

// Is reports whether target is ErrGaveUp.
func (e *GaveUpError) Is(target error) bool { return target == ErrGaveUp }

// Unwrap returns the final attempt's error.
func (e *GaveUpError) Unwrap() error { return e.Last }
