package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// The JSON form of a scenario uses snake_case keys and durations as Go
// duration strings ("1m30s"); see sim/testdata/*.json for examples.

// duration is a time.Duration that reads and writes "1m30s".
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string like \"1m30s\" (got %s)", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q: %w", s, err)
	}
	*d = duration(v)
	return nil
}

type backoffJSON struct {
	Initial        duration `json:"initial,omitempty"`
	Multiplier     float64  `json:"multiplier,omitempty"`
	Max            duration `json:"max,omitempty"`
	Jitter         string   `json:"jitter,omitempty"`
	JitterFraction float64  `json:"jitter_fraction,omitempty"`
	MaxAttempts    int      `json:"max_attempts,omitempty"`
	FirstImmediate bool     `json:"first_immediate,omitempty"`
	ConnectTimeout duration `json:"connect_timeout,omitempty"`
	StableAfter    duration `json:"stable_after,omitempty"`
	ReconnectFloor duration `json:"reconnect_floor,omitempty"`
	GiveUpAfter    duration `json:"give_up_after,omitempty"`
	RetryAfterMax  duration `json:"retry_after_max,omitempty"`
}

// handshakeRateJSON is fsm.HandshakeRate.
type handshakeRateJSON struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst,omitempty"`
}

// failuresJSON is fsm.FailurePolicy: the slow schedule and the rules.
type failuresJSON struct {
	Schedule *backoffJSON      `json:"schedule,omitempty"`
	Rules    []failureRuleJSON `json:"rules,omitempty"`
	AppCodes string            `json:"app_codes,omitempty"`
}

type failureRuleJSON struct {
	Status int    `json:"status,omitempty"`
	Code   int    `json:"code,omitempty"`
	Class  string `json:"class"`
}

type changeJSON struct {
	At      duration     `json:"at"`
	Backoff *backoffJSON `json:"backoff"`
}

type livenessJSON struct {
	PingInterval     duration `json:"ping_interval,omitempty"`
	PongTimeout      duration `json:"pong_timeout,omitempty"`
	IdleTimeout      duration `json:"idle_timeout,omitempty"`
	WriteTimeout     duration `json:"write_timeout,omitempty"`
	MaxErrors        int      `json:"max_errors,omitempty"`
	HandshakeTimeout duration `json:"handshake_timeout,omitempty"`
	CloseTimeout     duration `json:"close_timeout,omitempty"`
}

type latencyJSON struct {
	Base   duration `json:"base,omitempty"`
	Jitter duration `json:"jitter,omitempty"`
	Dist   string   `json:"dist,omitempty"`
}

type faultJSON struct {
	Kind    string       `json:"kind"`
	Start   duration     `json:"start,omitempty"`
	End     duration     `json:"end,omitempty"`
	Clients []int        `json:"clients,omitempty"`
	Servers []int        `json:"servers,omitempty"`
	Rate    float64      `json:"rate,omitempty"`
	Code    int          `json:"code,omitempty"`
	Latency *latencyJSON `json:"latency,omitempty"`
}

type scenarioJSON struct {
	Seed           uint64             `json:"seed"`
	Clients        int                `json:"clients"`
	Servers        int                `json:"servers,omitempty"`
	Duration       duration           `json:"duration,omitempty"`
	Backoff        *backoffJSON       `json:"backoff,omitempty"`
	Failures       *failuresJSON      `json:"failures,omitempty"`
	BackoffChanges []changeJSON       `json:"backoff_changes,omitempty"`
	ClientLiveness *livenessJSON      `json:"client_liveness,omitempty"`
	ServerLiveness *livenessJSON      `json:"server_liveness,omitempty"`
	Latency        *latencyJSON       `json:"latency,omitempty"`
	EventInterval  duration           `json:"event_interval,omitempty"`
	ClientEvents   duration           `json:"client_event_interval,omitempty"`
	Faults         []faultJSON        `json:"faults,omitempty"`
	Bugs           []string           `json:"bugs,omitempty"`
	Cluster        *clusterJSON       `json:"cluster,omitempty"`
	HandshakeRate  *handshakeRateJSON `json:"handshake_rate,omitempty"`
	Outbox         *outboxJSON        `json:"outbox,omitempty"`
}

type outboxJSON struct {
	Count int      `json:"count,omitempty"`
	Bytes int      `json:"bytes,omitempty"`
	Age   duration `json:"age,omitempty"`
}

// MarshalJSON writes s in the scenario file format.
func (s Scenario) MarshalJSON() ([]byte, error) {
	j := scenarioJSON{
		Seed: s.Seed, Clients: s.Clients, Servers: s.Servers, Duration: duration(s.Duration),
		EventInterval: duration(s.EventInterval), ClientEvents: duration(s.ClientEventInterval),
	}
	j.Backoff = backoffToJSON(s.Backoff)
	j.Failures = failuresToJSON(s.Failures)
	for _, ch := range s.BackoffChanges {
		j.BackoffChanges = append(j.BackoffChanges, changeJSON{duration(ch.At), backoffToJSON(ch.Backoff)})
	}
	j.ClientLiveness, j.ServerLiveness = livenessToJSON(s.ClientLiveness), livenessToJSON(s.ServerLiveness)
	j.Latency = latencyToJSON(s.Latency)
	for _, f := range s.Faults {
		fj := faultJSON{Kind: f.Kind.String(), Start: duration(f.Start), End: duration(f.End), Servers: f.Servers,
			Rate: f.Rate, Code: f.Code, Latency: latencyToJSON(f.Latency)}
		if !f.Clients.all() {
			fj.Clients = []int{f.Clients.From, f.Clients.To}
		}
		j.Faults = append(j.Faults, fj)
	}
	for _, b := range s.Bugs {
		j.Bugs = append(j.Bugs, b.String())
	}
	j.Cluster = clusterToJSON(s.Cluster)
	if s.HandshakeRate != (fsm.HandshakeRate{}) {
		j.HandshakeRate = &handshakeRateJSON{s.HandshakeRate.PerSecond, s.HandshakeRate.Burst}
	}
	if s.Outbox.On() {
		j.Outbox = &outboxJSON{Count: s.Outbox.Count, Bytes: s.Outbox.Bytes, Age: duration(s.Outbox.Age)}
	}
	return json.Marshal(j)
}

func livenessToJSON(l fsm.Liveness) *livenessJSON {
	if l == (fsm.Liveness{}) {
		return nil
	}
	return &livenessJSON{duration(l.PingInterval), duration(l.PongTimeout), duration(l.IdleTimeout),
		duration(l.WriteTimeout), l.MaxErrors, duration(l.HandshakeTimeout), duration(l.CloseTimeout)}
}

func latencyToJSON(l Latency) *latencyJSON {
	if l == (Latency{}) {
		return nil
	}
	return &latencyJSON{duration(l.Base), duration(l.Jitter), l.Dist.String()}
}

// UnmarshalJSON reads s from the scenario file format. Unknown keys are
// errors, so a misspelt field does not silently mean its default.
func (s *Scenario) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j scenarioJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("%w: %w", ErrScenario, err)
	}
	out := Scenario{Seed: j.Seed, Clients: j.Clients, Servers: j.Servers, Duration: time.Duration(j.Duration),
		EventInterval: time.Duration(j.EventInterval), ClientEventInterval: time.Duration(j.ClientEvents)}
	var err error
	if out.Backoff, err = backoffFromJSON(j.Backoff, "backoff"); err != nil {
		return err
	}
	if out.Failures, err = failuresFromJSON(j.Failures); err != nil {
		return err
	}
	for i, ch := range j.BackoffChanges {
		var b fsm.Backoff
		if ch.Backoff != nil {
			var err error
			if b, err = backoffFromJSON(ch.Backoff, fmt.Sprintf("backoff_changes[%d].backoff", i)); err != nil {
				return err
			}
		}
		out.BackoffChanges = append(out.BackoffChanges, BackoffChange{At: time.Duration(ch.At), Backoff: b})
	}
	out.ClientLiveness, out.ServerLiveness = livenessFromJSON(j.ClientLiveness), livenessFromJSON(j.ServerLiveness)
	if out.Latency, err = latencyFromJSON(j.Latency, "latency"); err != nil {
		return err
	}
	for i, fj := range j.Faults {
		k, err := parseFaultKind(fj.Kind)
		if err != nil {
			return fmt.Errorf("faults[%d].kind: %w", i, err)
		}
		f := Fault{Kind: k, Start: time.Duration(fj.Start), End: time.Duration(fj.End), Servers: fj.Servers,
			Rate: fj.Rate, Code: fj.Code}
		switch len(fj.Clients) {
		case 0:
		case 2:
			f.Clients = Range{fj.Clients[0], fj.Clients[1]}
		default:
			return fmt.Errorf("%w: faults[%d].clients must be [from, to) as two numbers (got %v)", ErrScenario, i, fj.Clients)
		}
		if f.Latency, err = latencyFromJSON(fj.Latency, fmt.Sprintf("faults[%d].latency", i)); err != nil {
			return err
		}
		out.Faults = append(out.Faults, f)
	}
	for i, name := range j.Bugs {
		b, err := ParseBug(name)
		if err != nil {
			return fmt.Errorf("bugs[%d]: %w", i, err)
		}
		out.Bugs = append(out.Bugs, b)
	}
	if h := j.HandshakeRate; h != nil {
		out.HandshakeRate = fsm.HandshakeRate{PerSecond: h.PerSecond, Burst: h.Burst}
	}
	if out.Cluster, err = clusterFromJSON(j.Cluster); err != nil {
		return err
	}
	if o := j.Outbox; o != nil {
		out.Outbox = fsm.Outbox{Count: o.Count, Bytes: o.Bytes, Age: time.Duration(o.Age)}
	}
	*s = out
	return nil
}

func livenessFromJSON(l *livenessJSON) fsm.Liveness {
	if l == nil {
		return fsm.Liveness{}
	}
	return fsm.Liveness{PingInterval: time.Duration(l.PingInterval), PongTimeout: time.Duration(l.PongTimeout),
		IdleTimeout: time.Duration(l.IdleTimeout), WriteTimeout: time.Duration(l.WriteTimeout), MaxErrors: l.MaxErrors,
		HandshakeTimeout: time.Duration(l.HandshakeTimeout), CloseTimeout: time.Duration(l.CloseTimeout)}
}

func latencyFromJSON(l *latencyJSON, field string) (Latency, error) {
	if l == nil {
		return Latency{}, nil
	}
	out := Latency{Base: time.Duration(l.Base), Jitter: time.Duration(l.Jitter)}
	switch l.Dist {
	case "", "uniform":
	case "exponential":
		out.Dist = Exponential
	default:
		return Latency{}, fmt.Errorf("%w: %s.dist must be uniform or exponential (got %q)", ErrScenario, field, l.Dist)
	}
	return out, nil
}

// parseScenario reads a scenario from JSON and validates it.
func parseScenario(data []byte) (Scenario, error) {
	var s Scenario
	if err := json.Unmarshal(data, &s); err != nil {
		return Scenario{}, err
	}
	if err := s.Validate(); err != nil {
		return Scenario{}, err
	}
	return s, nil
}

// LoadScenario reads and validates the scenario file at path.
func LoadScenario(path string) (Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("sim: read scenario: %w", err)
	}
	s, err := parseScenario(data)
	if err != nil {
		return Scenario{}, fmt.Errorf("sim: scenario %s: %w", path, err)
	}
	return s, nil
}

func backoffToJSON(b fsm.Backoff) *backoffJSON {
	if b == (fsm.Backoff{}) {
		return nil
	}
	return &backoffJSON{duration(b.Initial), b.Multiplier, duration(b.Max), b.Jitter.String(), b.JitterFraction,
		b.MaxAttempts, b.FirstImmediate, duration(b.ConnectTimeout), duration(b.StableAfter),
		duration(b.ReconnectFloor), duration(b.GiveUpAfter), duration(b.RetryAfterMax)}
}

func backoffFromJSON(b *backoffJSON, where string) (fsm.Backoff, error) {
	if b == nil {
		return fsm.Backoff{}, nil
	}
	out := fsm.Backoff{Initial: time.Duration(b.Initial), Multiplier: b.Multiplier, Max: time.Duration(b.Max),
		JitterFraction: b.JitterFraction, MaxAttempts: b.MaxAttempts, FirstImmediate: b.FirstImmediate,
		ConnectTimeout: time.Duration(b.ConnectTimeout), StableAfter: time.Duration(b.StableAfter),
		ReconnectFloor: time.Duration(b.ReconnectFloor), GiveUpAfter: time.Duration(b.GiveUpAfter),
		RetryAfterMax: time.Duration(b.RetryAfterMax)}
	if b.Jitter != "" {
		k, err := fsm.ParseJitter(b.Jitter)
		if err != nil {
			return out, fmt.Errorf("%w: %s.jitter: %w", ErrScenario, where, err)
		}
		out.Jitter = k
	}
	return out, nil
}

func failuresToJSON(p fsm.FailurePolicy) *failuresJSON {
	if p.Rules == nil && p.AppCodes == fsm.Transient && p.Schedule == (fsm.Backoff{}) {
		return nil
	}
	j := &failuresJSON{Schedule: backoffToJSON(p.Schedule)}
	if p.AppCodes != fsm.Transient {
		j.AppCodes = p.AppCodes.String()
	}
	for _, r := range p.Rules {
		j.Rules = append(j.Rules, failureRuleJSON{Status: r.Status, Code: r.Code, Class: r.Class.String()})
	}
	return j
}

func failuresFromJSON(j *failuresJSON) (fsm.FailurePolicy, error) {
	var p fsm.FailurePolicy
	if j == nil {
		return p, nil
	}
	var err error
	if p.Schedule, err = backoffFromJSON(j.Schedule, "failures.schedule"); err != nil {
		return p, err
	}
	if j.AppCodes != "" {
		if p.AppCodes, err = fsm.ParseFailureClass(j.AppCodes); err != nil {
			return p, fmt.Errorf("%w: failures.app_codes: %w", ErrScenario, err)
		}
	}
	for i, r := range j.Rules {
		c, err := fsm.ParseFailureClass(r.Class)
		if err != nil {
			return p, fmt.Errorf("%w: failures.rules[%d].class: %w", ErrScenario, i, err)
		}
		p.Rules = append(p.Rules, fsm.FailureRule{Status: r.Status, Code: r.Code, Class: c})
	}
	return p, nil
}
