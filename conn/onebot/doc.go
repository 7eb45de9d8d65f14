// Package onebot is the OneBot v11 transport profile on top of package
// conn: a forward WebSocket Server, a reverse WebSocket Client, and a
// Caller that matches API responses to requests by echo.
//
// The lifecycles are conn's: every link is reaped or reconnected by the
// fsm policies (WebSocket ping and pong deadline, failed or backed-up
// sends, backoff with jitter), not by heartbeat sends. What this package
// adds is the protocol around them, from the spec (botuniverse/onebot-11,
// communication/ws.md, ws-reverse.md, authorization.md, event/meta.md):
//
//   - Server serves `/` (API and events), `/api` and `/event`; with an
//     AccessToken, a request without `Authorization: Bearer <t>` or
//     `?access_token=<t>` gets 401 and a wrong one 403, before the
//     upgrade. Event links get the lifecycle connect meta event first,
//     then heartbeat meta events carrying a Status and the interval.
//   - Client dials the application with X-Self-ID, X-Client-Role
//     (Universal, or API and Event as two links), Authorization and
//     User-Agent; it reconnects by DefaultBackoff (the spec's 3000 ms as
//     the first delay, then ×1.6 with jitter, first retry immediate) after
//     every failure, a drop after connecting included, and greets each new
//     event link with the lifecycle event.
//   - Both ends answer get_status, get_version_info and get_login_info
//     from their own state, and any Actions you add; an unknown action
//     gets status "failed", retcode 1404. A message that is not a request
//     is answered 1400, logged once, and counted by conn as a protocol
//     error: Liveness.MaxErrors in a row close the link.
//
// docs/onebot.md maps each requirement to the test that shows it.
package onebot
