package fsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/qmuntal/stateless"
)

// instance is one running lifecycle as a built machine sees it. A machine
// from build keeps no state: it reads and writes the state of whichever
// instance is passed as the context to FireCtx, so one machine serves every
// instance of its table (see docs/decisions.md for the measured cost of the
// alternative, a machine per instance). Client, Session, Node and Peer
// implement it.
type instance interface {
	context.Context
	// LifecycleState returns the instance's current state.
	LifecycleState() State
	// SetLifecycleState stores the state the machine moved to.
	SetLifecycleState(State)
	// GuardHolds evaluates g for the trigger being fired.
	GuardHolds(Guard) bool
}

// errNotInstance is returned by a built machine fired with a context that is
// not an instance.
var errNotInstance = errors.New("fsm: context passed to a built machine is not a lifecycle instance")

// Check reports structural mistakes in t: rows that name states outside
// States, rows leaving a terminal state, triggers with overlapping guards.
func (t *Table) Check() error {
	in := map[State]bool{}
	for _, s := range t.States {
		in[s] = true
	}
	var errs []error
	if !in[t.Initial] {
		errs = append(errs, fmt.Errorf("fsm: %s table: initial state %s is not in States", t.Machine, t.Initial))
	}
	type key struct {
		from State
		tr   Trigger
	}
	guards := map[key][]Guard{}
	for i, r := range t.Rows {
		if !in[r.From] || !in[r.To] {
			errs = append(errs, fmt.Errorf("fsm: %s table row %d (%s -%s-> %s): state not in States", t.Machine, i, r.From, r.Trigger, r.To))
		}
		if t.isTerminal(r.From) {
			errs = append(errs, fmt.Errorf("fsm: %s table row %d: leaves terminal state %s", t.Machine, i, r.From))
		}
		guards[key{r.From, r.Trigger}] = append(guards[key{r.From, r.Trigger}], r.Guard)
	}
	for k, gs := range guards {
		if !exclusive(gs) {
			errs = append(errs, fmt.Errorf("fsm: %s table: %s on %s has guards %v, which are not mutually exclusive", t.Machine, k.from, k.tr, gs))
		}
	}
	return errors.Join(errs...)
}

// exclusive reports whether at most one of gs can hold at a time: a single
// row, or exactly one complementary pair.
func exclusive(gs []Guard) bool {
	switch len(gs) {
	case 1:
		return true
	case 2:
		return complement(gs[0]) == gs[1]
	}
	return false
}

func complement(g Guard) Guard {
	switch g {
	case RetriesLeft:
		return RetriesExhausted
	case RetriesExhausted:
		return RetriesLeft
	case BelowErrorLimit:
		return AtErrorLimit
	case AtErrorLimit:
		return BelowErrorLimit
	case FloorPassed:
		return FloorPending
	case FloorPending:
		return FloorPassed
	}
	return 255
}

// build returns a qmuntal/stateless machine configured from t, with
// external storage and FiringImmediate: each FireCtx runs to completion on
// the caller's goroutine against the instance passed as its context, so
// concurrent instances do not share a queue. Fire it with a context that is
// not an instance and it returns an error. An unhandled trigger returns an
// *UnhandledError (with Event zero).
func build(t *Table) (*stateless.StateMachine, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	sm := stateless.NewStateMachineWithExternalStorage(
		func(ctx context.Context) (stateless.State, error) {
			if in, ok := ctx.(instance); ok {
				return in.LifecycleState(), nil
			}
			return nil, errNotInstance
		},
		func(ctx context.Context, s stateless.State) error {
			in, ok := ctx.(instance)
			if !ok {
				return errNotInstance
			}
			in.SetLifecycleState(s.(State))
			return nil
		},
		stateless.FiringImmediate,
	)
	configure(sm, t)
	return sm, nil
}

// configure adds t's rows to sm. It is shared by Build and by the
// machine-per-instance variant measured in the benchmarks.
func configure(sm *stateless.StateMachine, t *Table) {
	machine := t.Machine
	sm.OnUnhandledTrigger(func(_ context.Context, s stateless.State, tr stateless.Trigger, _ []string) error {
		st, _ := s.(State)
		trg, _ := tr.(Trigger)
		return &UnhandledError{Machine: machine, State: st, Trigger: trg}
	})
	for _, s := range t.States {
		sm.Configure(s) // terminal states get a representation too, so ToGraph lists them
	}
	for _, r := range t.Rows {
		sc := sm.Configure(r.From)
		var gs []stateless.GuardFunc
		if r.Guard != NoGuard {
			gs = append(gs, guardFuncs[r.Guard])
		}
		if r.From == r.To {
			sc.PermitReentry(r.Trigger, gs...)
		} else {
			sc.Permit(r.Trigger, r.To, gs...)
		}
	}
}

// The guards are named functions, not closures, because stateless labels its
// own graph with the function name; the ToGraph cross-check relies on it.
var guardFuncs = map[Guard]stateless.GuardFunc{
	RetriesLeft:      retriesLeft,
	RetriesExhausted: retriesExhausted,
	BelowErrorLimit:  belowErrorLimit,
	AtErrorLimit:     atErrorLimit,
	FloorPassed:      floorPassed,
	FloorPending:     floorPending,
}

func holds(ctx context.Context, g Guard) bool {
	in, ok := ctx.(instance)
	return ok && in.GuardHolds(g)
}

func retriesLeft(ctx context.Context, _ ...any) bool      { return holds(ctx, RetriesLeft) }
func retriesExhausted(ctx context.Context, _ ...any) bool { return holds(ctx, RetriesExhausted) }
func belowErrorLimit(ctx context.Context, _ ...any) bool  { return holds(ctx, BelowErrorLimit) }
func atErrorLimit(ctx context.Context, _ ...any) bool     { return holds(ctx, AtErrorLimit) }
func floorPassed(ctx context.Context, _ ...any) bool      { return holds(ctx, FloorPassed) }
func floorPending(ctx context.Context, _ ...any) bool     { return holds(ctx, FloorPending) }

// shared holds the one machine per built-in table that every Client and
// Session fires. Building is deterministic and cannot fail for the built-in
// tables (TestBuiltinTablesCheck), and the machines are read-only once
// configured.
var shared = struct {
	client, session, node, peer func() *stateless.StateMachine
}{
	client:  sync.OnceValue(func() *stateless.StateMachine { return mustBuild(ClientTable()) }),
	session: sync.OnceValue(func() *stateless.StateMachine { return mustBuild(SessionTable()) }),
	node:    sync.OnceValue(func() *stateless.StateMachine { return mustBuild(NodeTable()) }),
	peer:    sync.OnceValue(func() *stateless.StateMachine { return mustBuild(PeerTable()) }),
}

func mustBuild(t *Table) *stateless.StateMachine {
	sm, err := build(t)
	if err != nil {
		panic(err) // unreachable: the built-in tables are checked by a test
	}
	return sm
}

// instanceCtx is the context half of an instance: a context that never ends
// and carries no values. Embedding it by value in Client and Session lets a
// machine be fired with a pointer to them, so firing allocates nothing.
type instanceCtx struct{}

func (instanceCtx) Deadline() (deadline time.Time, ok bool) { return }
func (instanceCtx) Done() <-chan struct{}                   { return nil }
func (instanceCtx) Err() error                              { return nil }
func (instanceCtx) Value(any) any                           { return nil }
