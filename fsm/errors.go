package fsm

import (
	"errors"
	"fmt"
)

// ErrUnhandled is matched (errors.Is) by every *UnhandledError.
var ErrUnhandled = errors.New("fsm: event not accepted in this state")

// ErrInvalidPolicy is matched (errors.Is) by every *FieldError.
var ErrInvalidPolicy = errors.New("fsm: invalid policy")

// UnhandledError reports an event the machine does not accept in its
// current state. The machine is unchanged: nothing happened.
type UnhandledError struct {
	Machine Machine // the machine that refused it
	State   State   // its state, unchanged
	Event   Event   // the event handed in
	// Trigger is the table trigger the event maps to, or zero when the event
	// itself is meaningless in State (EvSent on a Closing session, say).
	Trigger Trigger
}

// Error names the machine, its state and the event (and trigger).
func (e *UnhandledError) Error() string {
	if e.Trigger == 0 {
		return fmt.Sprintf("fsm: %s in state %s does not accept event %s", e.Machine, e.State, e.Event)
	}
	return fmt.Sprintf("fsm: %s in state %s has no transition for trigger %s (event %s)",
		e.Machine, e.State, e.Trigger, e.Event)
}

// Is reports whether target is ErrUnhandled.
func (e *UnhandledError) Is(target error) bool { return target == ErrUnhandled }

// FieldError reports one policy field that breaks one rule. Validate joins
// all of them (errors.Join), so a caller sees every problem at once and can
// still errors.As the first.
type FieldError struct {
	Policy string // "Backoff" or "Liveness"
	Field  string // the Go field name
	Rule   string // what the value must satisfy, in words
	Value  any    // the offending value as given
}

// Error names the field, the rule and the value.
func (e *FieldError) Error() string {
	return fmt.Sprintf("fsm: %s.%s %s (got %v)", e.Policy, e.Field, e.Rule, e.Value)
}

// Is reports whether target is ErrInvalidPolicy.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidPolicy }
