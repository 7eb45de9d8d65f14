package fsm

import (
	"strconv"
	"time"
)

// GiveUpCause says why a client entered GaveUp.
type GiveUpCause uint8

const (
	// GiveUpNone: the client has not given up.
	GiveUpNone GiveUpCause = iota
	// GiveUpAttempts: Backoff.MaxAttempts consecutive attempts failed.
	GiveUpAttempts
	// GiveUpOffline: the client went Backoff.GiveUpAfter without a proven
	// link (one that stayed up StableAfter).
	GiveUpOffline
	// GiveUpFatal: a failure the failure table calls Fatal.
	GiveUpFatal
)

var giveUpNames = [...]string{GiveUpNone: "", GiveUpAttempts: "max_attempts", GiveUpOffline: "give_up_after",
	GiveUpFatal: "fatal_failure"}

// String returns the cause's name, the value of the `gave_up` log key.
func (g GiveUpCause) String() string {
	if int(g) < len(giveUpNames) {
		return giveUpNames[g]
	}
	return "GiveUpCause(" + strconv.Itoa(int(g)) + ")"
}

// giveUp returns why a failure observed at now ends the client, or
// GiveUpNone: the attempt limit first, then the offline deadline. The
// deadline is judged at failures only, so the client gives up at the first
// failure at or past it: at most Max plus ConnectTimeout after it.
func (c *Client) giveUp(now time.Time) GiveUpCause {
	if c.class == Fatal {
		return GiveUpFatal
	}
	if c.b.GivesUpAfter(c.failures + 1) {
		return GiveUpAttempts
	}
	if c.b.GiveUpAfter > 0 && !now.Before(c.offlineSince.Add(c.b.GiveUpAfter)) {
		return GiveUpOffline
	}
	return GiveUpNone
}

// OfflineSince returns when the client last had no proven link: Run's
// start, or the failure that ended the last link that stayed up
// StableAfter. Backoff.GiveUpAfter counts from it.
func (c *Client) OfflineSince() time.Time { return c.offlineSince }

// GaveUpCause returns why the client gave up, GiveUpNone unless it is in
// GaveUp.
func (c *Client) GaveUpCause() GiveUpCause { return c.gaveUp }

// Rejections returns the current run of consecutive permanent failures,
// the k the slow schedule takes; a link that comes up ends it.
func (c *Client) Rejections() int { return c.rejections }
