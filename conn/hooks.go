package conn

// testHooks break the adapter on purpose, one bug at a time, so that the
// property tests can show they catch each bug (internal/proptest's
// ExpectFailure). They are nil outside those tests; every method is safe
// on a nil receiver.
type testHooks struct {
	// unguarded sends without consulting the session's state: the field
	// report's server that kept writing to dead sessions.
	unguarded bool
	// deaf ignores pongs, so live peers look silent.
	deaf bool
	// noTicks never ticks sessions: dead peers are left to the read
	// deadline backstop.
	noTicks bool
	// hasty retries as soon as an attempt fails: the field report's client
	// whose exception path skipped the reconnect wait.
	hasty bool
	// leaky never releases a reaped session from the registry: the field
	// report's server whose sessions accumulated (Server.Unproven and the
	// metrics package's anomaly catch it).
	leaky bool
}

func (h *testHooks) unguardedSend() bool { return h != nil && h.unguarded }
func (h *testHooks) ignorePongs() bool   { return h != nil && h.deaf }
func (h *testHooks) skipTicks() bool     { return h != nil && h.noTicks }
func (h *testHooks) skipWait() bool      { return h != nil && h.hasty }
func (h *testHooks) keepReaped() bool    { return h != nil && h.leaky }
