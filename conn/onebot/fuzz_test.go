package onebot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzHandle feeds arbitrary peer messages to the API handler: it must
// never panic, always answer with a JSON response whose status is one the
// spec knows, keep a well-formed request's echo, and report malformed
// input as errMalformed (which conn counts), nothing else.
//
//	go test -run '^$' -fuzz '^FuzzHandle$' -fuzztime 1m ./conn/onebot
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"action":"get_status","echo":1}`,
		`{"action":"get_login_info","params":{},"echo":"x"}`,
		`{"action":"get_version_info_async","echo":{"a":[1,2]}}`,
		`{"action":"send_private_msg","params":{"user_id":1,"message":"hi"},"echo":null}`,
		`{"action":"","echo":3}`,
		`{"action":123}`,
		`{"params":[],"echo":"e"}`,
		`[1,2,3]`, `null`, `"str"`, `{`, "\xff\xfe", ``,
		`{"action":"get_status","params":"not an object"}`,
		`{"action":"get_status","echo":1e999}`,
	} {
		f.Add([]byte(seed))
	}
	actions := standardActions(1, "fuzz", func() Status { return Status{Online: true, Good: true} })
	actions["fail"] = func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("no") }
	f.Fuzz(func(t *testing.T, msg []byte) {
		resp, err := actions.handle(context.Background(), msg)
		if err != nil && !errors.Is(err, errMalformed) {
			t.Fatalf("handle(%q) error %v is not errMalformed", msg, err)
		}
		var r Response
		if jerr := json.Unmarshal(resp, &r); jerr != nil {
			t.Fatalf("handle(%q) answered non-JSON %q: %v", msg, resp, jerr)
		}
		switch r.Status {
		case "ok", "failed", "async":
		default:
			t.Fatalf("handle(%q) answered status %q", msg, r.Status)
		}
		if err != nil && (r.Status != "failed" || r.Retcode != RetBadRequest) {
			t.Fatalf("malformed %q answered %+v, want failed 1400", msg, r)
		}
		var req request
		if err == nil {
			if json.Unmarshal(msg, &req) != nil {
				t.Fatalf("Handle accepted %q, which does not decode", msg)
			}
			if !bytes.Equal(compact(req.Echo), compact(r.Echo)) {
				t.Fatalf("echo %s came back as %s", req.Echo, r.Echo)
			}
		}
		// A response is never mistaken for a request, nor a request for
		// a response.
		if !isResponse(resp) {
			t.Fatalf("isResponse(%q) = false for handle's own answer", resp)
		}
		if err == nil && isResponse(msg) {
			t.Fatalf("isResponse(%q) = true for a request", msg)
		}
	})
}

func compact(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}
