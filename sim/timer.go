package sim

// timer is one machine's timer. At most one event per timer is live (the
// one whose gen matches); it is armed no later than the machine's deadline.
// When a deadline moves later (a pong arrived) the event is left in the
// queue, and when it fires early it is simply queued again for the
// deadline recorded here, without waking the machine: the queue cannot
// remove events, and this costs one cheap pop instead of a machine step.
type timer struct {
	armed    int64 // when the live event fires, or never
	deadline int64 // the machine's deadline when last asked, or never
	gen      uint32
}

// cancel makes any queued event of t stale.
func (t *timer) cancel() {
	t.gen++
	t.armed, t.deadline = never, never
}

// arm records deadline d (clamped to now) and queues an event for it
// unless one is already armed no later.
func (w *world) arm(t *timer, d int64, kind evKind, id uint32) {
	d = max(d, w.now)
	t.deadline = d
	if d >= t.armed {
		return
	}
	t.gen++
	t.armed = d
	w.q.push(event{at: d, kind: kind, id: id, gen: t.gen})
}

// due reports whether e, a timer event of t, should wake its machine: it is
// live and the deadline has come. An early one is queued again for the
// recorded deadline.
func (w *world) due(t *timer, e event) bool {
	if e.gen != t.gen {
		return false
	}
	t.armed = never
	if t.deadline == never {
		return false
	}
	if w.now < t.deadline {
		w.arm(t, t.deadline, e.kind, e.id)
		return false
	}
	return true
}
