package onebot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Retcodes of failed responses. A WebSocket call has no HTTP status, so
// the spec moves the status into retcode: 1400 for a bad request, 1404 for
// an unknown action (communication/ws.md).
const (
	RetOK         = 0
	RetBadRequest = 1400
	RetNotFound   = 1404
	// RetFailed is for an action that ran and failed; the spec leaves
	// non-HTTP codes to implementations.
	RetFailed = 100
)

// request is an API call: {"action": ..., "params": {...}, "echo": ...}.
// Echo is any JSON value, returned unchanged in the response.
type request struct {
	Action string          `json:"action"`
	Params json.RawMessage `json:"params,omitempty"`
	Echo   json.RawMessage `json:"echo,omitempty"`
}

// Response answers an API request: status "ok" or "failed", a retcode,
// the action's data, and the request's echo.
type Response struct {
	Status  string          `json:"status"`         // "ok", "async" or "failed"
	Retcode int             `json:"retcode"`        // RetOK, or why it failed (RetNotFound, ...)
	Data    json.RawMessage `json:"data"`           // the action's result, JSON null when none
	Echo    json.RawMessage `json:"echo,omitempty"` // the request's echo, as it was sent
	// Message says why a call failed (an extension most implementations
	// carry as "msg" or "wording"; lifeline fills "msg").
	Message string `json:"msg,omitempty"`
}

// Status is what get_status answers and every heartbeat carries: whether
// the bot is online, and whether everything works as expected.
type Status struct {
	Online bool `json:"online"` // the bot is serving
	Good   bool `json:"good"`   // and nothing is failing
}

// versionInfo is get_version_info's answer.
type versionInfo struct {
	AppName         string `json:"app_name"`
	AppVersion      string `json:"app_version"`
	ProtocolVersion string `json:"protocol_version"`
}

// loginInfo is get_login_info's answer.
type loginInfo struct {
	UserID   int64  `json:"user_id"`
	Nickname string `json:"nickname"`
}

// version is lifeline's OneBot implementation version, in
// get_version_info and the User-Agent of reverse links.
const version = "0.1.0"

// appName is the app_name get_version_info reports.
const appName = "lifeline"

// metaEvent is the shape shared by the meta events lifeline emits.
type metaEvent struct {
	Time          int64   `json:"time"`
	SelfID        int64   `json:"self_id"`
	PostType      string  `json:"post_type"`
	MetaEventType string  `json:"meta_event_type"`
	SubType       string  `json:"sub_type,omitempty"`
	Status        *Status `json:"status,omitempty"`
	Interval      int64   `json:"interval,omitempty"`
}

// LifecycleConnect returns the lifecycle meta event with sub_type
// "connect" that opens every event-carrying WebSocket link.
func LifecycleConnect(selfID int64, now time.Time) []byte {
	return mustJSON(metaEvent{Time: now.Unix(), SelfID: selfID, PostType: "meta_event",
		MetaEventType: "lifecycle", SubType: "connect"})
}

// Heartbeat returns the heartbeat meta event: the status now, and the
// interval to the next heartbeat in milliseconds.
func Heartbeat(selfID int64, now time.Time, st Status, interval time.Duration) []byte {
	return mustJSON(metaEvent{Time: now.Unix(), SelfID: selfID, PostType: "meta_event",
		MetaEventType: "heartbeat", Status: &st, Interval: interval.Milliseconds()})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("onebot: marshal %T: %v", v, err)) // fixed shapes: cannot fail
	}
	return b
}

// ActionFunc runs one action. params is the request's "params" (nil when
// absent). The result is marshalled into "data"; an error makes a failed
// response, with the retcode of an *ActionError or RetFailed.
type ActionFunc func(ctx context.Context, params json.RawMessage) (any, error)

// ActionError is an action's failure with the retcode to answer.
type ActionError struct {
	Retcode int    // the response's retcode (RetFailed when in doubt)
	Message string // the response's msg
}

// Error gives the retcode and the message.
func (e *ActionError) Error() string {
	return fmt.Sprintf("onebot: retcode %d: %s", e.Retcode, e.Message)
}

// Actions maps action names to their implementations.
type Actions map[string]ActionFunc

// standardActions returns the three actions every lifeline OneBot end
// answers from its own state: get_status (status()), get_version_info
// and get_login_info (selfID, nickname).
func standardActions(selfID int64, nickname string, status func() Status) Actions {
	return Actions{
		"get_status": func(context.Context, json.RawMessage) (any, error) { return status(), nil },
		"get_version_info": func(context.Context, json.RawMessage) (any, error) {
			return versionInfo{AppName: appName, AppVersion: version, ProtocolVersion: "v11"}, nil
		},
		"get_login_info": func(context.Context, json.RawMessage) (any, error) {
			return loginInfo{UserID: selfID, Nickname: nickname}, nil
		},
	}
}

// botDefaults fills the zero values both ends share: the nickname and the
// heartbeat interval.
func botDefaults(nickname *string, heartbeat *time.Duration) {
	if *nickname == "" {
		*nickname = appName
	}
	if *heartbeat == 0 {
		*heartbeat = DefaultHeartbeatInterval
	}
}

// actionsFor returns the standard actions for the bot with extra on top.
func actionsFor(selfID int64, nickname string, status func() Status, extra Actions) Actions {
	a := standardActions(selfID, nickname, status)
	for name, fn := range extra {
		a[name] = fn
	}
	return a
}

// errMalformed is wrapped by handle's error for a message that is not a
// JSON API request. The connection layer counts it as a protocol error.
var errMalformed = errors.New("onebot: malformed request")

// handle answers one API request message: the response to send, and an
// error wrapping errMalformed when msg was not a JSON object with a
// string "action" (then the response is a failed 1400, echo included if
// one could be read, so the caller still learns its request was refused).
// Unknown actions answer failed 1404; they are the caller's mistake, not
// the link's, and return no error. Action suffixes "_async" and
// "_rate_limited" run the action and answer "async", as the spec's
// HTTP API does.
func (a Actions) handle(ctx context.Context, msg []byte) ([]byte, error) {
	var req request
	if err := json.Unmarshal(msg, &req); err != nil || req.Action == "" {
		if err == nil {
			err = errors.New(`no "action"`)
		}
		resp := Response{Status: "failed", Retcode: RetBadRequest, Data: jsonNull, Echo: echoOf(msg),
			Message: "malformed request"}
		return mustJSON(resp), fmt.Errorf("%w: %v", errMalformed, err)
	}
	name, async := req.Action, false
	for _, suffix := range []string{"_async", "_rate_limited"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			name, async = base, true
		}
	}
	resp := Response{Status: "ok", Data: jsonNull, Echo: req.Echo}
	fn, ok := a[name]
	switch {
	case !ok:
		resp.Status, resp.Retcode, resp.Message = "failed", RetNotFound, "unknown action "+req.Action
	default:
		data, err := fn(ctx, req.Params)
		var ae *ActionError
		switch {
		case errors.As(err, &ae):
			resp.Status, resp.Retcode, resp.Message = "failed", ae.Retcode, ae.Message
		case err != nil:
			resp.Status, resp.Retcode, resp.Message = "failed", RetFailed, err.Error()
		case async:
			resp.Status, resp.Retcode = "async", 1
		default:
			resp.Data = mustJSON(data)
		}
	}
	return mustJSON(resp), nil
}

var jsonNull = json.RawMessage("null")

// echoOf digs the echo out of a request that failed to decode as a whole
// (a wrong type in params, say), or returns nil.
func echoOf(msg []byte) json.RawMessage {
	var probe struct {
		Echo json.RawMessage `json:"echo"`
	}
	if json.Unmarshal(msg, &probe) != nil || len(probe.Echo) == 0 {
		return nil
	}
	return probe.Echo
}

// isResponse tells a response from an event or a request by its
// "retcode" and "status" keys (events carry "post_type", requests
// "action").
func isResponse(msg []byte) bool {
	var probe struct {
		Status  *string          `json:"status"`
		Retcode *json.RawMessage `json:"retcode"`
		Action  *json.RawMessage `json:"action"`
	}
	if !bytes.Contains(msg, []byte(`"retcode"`)) || json.Unmarshal(msg, &probe) != nil {
		return false
	}
	return probe.Retcode != nil && probe.Status != nil && probe.Action == nil
}

// isEvent tells an event by its string "post_type" and no "action".
func isEvent(msg []byte) bool {
	var probe struct {
		PostType *string         `json:"post_type"`
		Action   json.RawMessage `json:"action"`
	}
	if !bytes.Contains(msg, []byte(`"post_type"`)) || json.Unmarshal(msg, &probe) != nil {
		return false
	}
	return probe.PostType != nil && probe.Action == nil
}
