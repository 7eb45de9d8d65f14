package sim

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Scenario{Clients: 3, Servers: 2, Duration: time.Hour}
	tests := []struct {
		name string
		edit func(*Scenario)
		want string
	}{
		{"valid", func(*Scenario) {}, ""},
		{"no clients", func(s *Scenario) { s.Clients = 0 }, "Clients must be within [1, 100000] (got 0)"},
		{"bad policy", func(s *Scenario) { s.Backoff.Multiplier = 0.5 }, "Backoff: fsm: Backoff.Multiplier"},
		{"bad liveness", func(s *Scenario) { s.ServerLiveness.PongTimeout = 2 * time.Minute }, "ServerLiveness: fsm: Liveness.PongTimeout"},
		{"negative latency", func(s *Scenario) { s.Latency.Jitter = -1 }, "Latency.Jitter must not be negative"},
		{"fault after the end", func(s *Scenario) { s.Faults = []Fault{{Kind: Refused, Start: 2 * time.Hour}} }, "Faults[0] (refused): Start must be within"},
		{"window backwards", func(s *Scenario) { s.Faults = []Fault{{Kind: Stall, Start: time.Minute, End: time.Second}} }, "End must be after Start"},
		{"restart without end", func(s *Scenario) { s.Faults = []Fault{{Kind: Restart}} }, "a restart needs the time the listener returns"},
		{"clients out of range", func(s *Scenario) { s.Faults = []Fault{{Kind: Kill, Clients: Range{2, 9}}} }, "Clients must be a non-empty range within [0, 3)"},
		{"no such server", func(s *Scenario) { s.Faults = []Fault{{Kind: Refused, Servers: []int{5}}} }, "server 5 does not exist"},
		{"rate on the wrong fault", func(s *Scenario) { s.Faults = []Fault{{Kind: Refused, Rate: 0.5}} }, "Rate only applies to loss"},
		{"loss of everything", func(s *Scenario) { s.Faults = []Fault{{Kind: Loss, Rate: 1}} }, "Rate must be within [0, 1)"},
		{"bad status", func(s *Scenario) { s.Faults = []Fault{{Kind: Auth, Code: 500}} }, "Code must be 401 or 403"},
		{"unknown fault", func(s *Scenario) { s.Faults = []Fault{{Kind: 77}} }, "unknown fault kind 77"},
		{"unknown bug", func(s *Scenario) { s.Bugs = []Bug{99} }, "Bugs[0]: unknown bug 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrScenario) {
				t.Fatalf("Validate() = %v, want ErrScenario naming %q", err, tt.want)
			}
		})
	}
}

func TestScenarioFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 3 {
		t.Fatalf("scenario examples missing: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sc, err := LoadScenario(f)
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(sc)
			if err != nil {
				t.Fatal(err)
			}
			back, err := parseScenario(js)
			if err != nil {
				t.Fatalf("%v\n%s", err, js)
			}
			if !reflect.DeepEqual(sc, back) {
				t.Fatalf("round trip changed the scenario:\n%+v\n%+v", sc, back)
			}
			res, err := Run(context.Background(), sc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// The broken example exists to fail; the others must hold.
			if broken := len(sc.Bugs) > 0; broken != res.Suite.Failed() {
				t.Fatalf("bugs %v, violations %v", sc.Bugs, res.Suite.Violations())
			}
		})
	}
}

func TestParseScenarioErrors(t *testing.T) {
	tests := []struct{ json, want string }{
		{`{"clients": 2, "duraton": "1m"}`, `unknown field "duraton"`},
		{`{"clients": 2, "duration": 60}`, `a duration must be a string like "1m30s" (got 60)`},
		{`{"clients": 2, "duration": "soon"}`, `bad duration "soon"`},
		{`{"clients": 2, "backoff": {"jitter": "lots"}}`, `backoff.jitter: fsm: unknown jitter kind "lots"`},
		{`{"clients": 2, "faults": [{"kind": "meteor"}]}`, `faults[0].kind: sim: invalid scenario: unknown fault kind "meteor"`},
		{`{"clients": 2, "faults": [{"kind": "kill", "clients": [1]}]}`, `faults[0].clients must be [from, to) as two numbers`},
		{`{"clients": 2, "latency": {"dist": "normal"}}`, `latency.dist must be uniform or exponential`},
		{`{"clients": 2, "bugs": ["gremlins"]}`, `bugs[0]: sim: invalid scenario: unknown bug "gremlins"`},
		{`{"clients": 0}`, `Clients must be within`},
		{`{"clients": 2,`, `unexpected end of JSON input`},
	}
	for _, tt := range tests {
		_, err := parseScenario([]byte(tt.json))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseScenario(%s) = %v, want %q", tt.json, err, tt.want)
		}
	}
	if _, err := LoadScenario(filepath.Join(t.TempDir(), "none.json")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestMix(t *testing.T) {
	a, err := Mix(DefaultMix, 9, 100, 3, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Mix(DefaultMix, 9, 100, 3, time.Hour)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same mix and seed gave different faults")
	}
	kinds := map[FaultKind]bool{}
	for _, f := range a {
		kinds[f.Kind] = true
	}
	if len(kinds) != 14 {
		t.Fatalf("DefaultMix covers %d of 14 fault kinds", len(kinds))
	}
	sc := Scenario{Clients: 100, Servers: 3, Duration: time.Hour, Faults: a}
	if err := sc.Validate(); err != nil {
		t.Fatalf("Mix made an invalid scenario: %v", err)
	}
	if f, _ := Mix("kill:0.5", 1, 10, 1, time.Hour); len(f) != 5 {
		t.Fatalf("kill:0.5 of 10 clients: %d faults, want 5 of one client each", len(f))
	}
	for spec, want := range map[string]string{
		"meteor": `unknown fault kind "meteor"`, "kill:2": "at most 1", "loss:1": "below 1", "restart:x": "non-negative number",
	} {
		if _, err := Mix(spec, 1, 10, 1, time.Hour); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Mix(%q) = %v, want %q", spec, err, want)
		}
	}
	if f, err := Mix("none", 1, 10, 1, time.Hour); f != nil || err != nil {
		t.Errorf("none: %v %v", f, err)
	}
}

func TestNames(t *testing.T) {
	for k := Refused; int(k) < len(faultNames); k++ {
		if got, err := parseFaultKind(k.String()); got != k || err != nil {
			t.Errorf("fault %d: %q parses to %v, %v", k, k, got, err)
		}
	}
	for _, b := range Bugs() {
		if got, err := ParseBug(b.String()); got != b || err != nil {
			t.Errorf("bug %d: %q parses to %v, %v", b, b, got, err)
		}
	}
	if len(Bugs()) != int(BugOutboxSilentDrop) || FaultKind(0).String() != "FaultKind(0)" || Bug(0).String() != "Bug(0)" || Dist(5).String() != "Dist(5)" {
		t.Error("names of unknown values")
	}
}
