package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512", 512, true}, {"512B", 512, true}, {"64KiB", 64 << 10, true}, {"1MiB", 1 << 20, true},
		{"2GiB", 2 << 30, true}, {"10KB", 10000, true}, {"3MB", 3e6, true}, {" 8 KiB ", 8 << 10, true},
		{"", 0, false}, {"0", 0, false}, {"-1KiB", 0, false}, {"1.5MiB", 0, false}, {"1XB", 0, false},
		{"KiB", 0, false}, {"9223372036854775807GiB", 0, false},
	} {
		var b byteSize
		err := b.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && int64(b) != tc.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, ok=%v", tc.in, b, err, tc.want, tc.ok)
		}
	}
	b := byteSize(64 << 10)
	if b.String() != "64KiB" {
		t.Errorf("String() = %q", b.String())
	}
}

func TestLimitFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--read-limit", "lots"}, `invalid value "lots" for flag -read-limit: want a positive size`},
		{[]string{"serve", "--handshake-timeout", "0s"}, "-handshake-timeout 0s: must be positive"},
		{[]string{"serve", "--max-handshakes", "-1"}, "MaxHandshakes"},
		{[]string{"onebot", "serve", "--self-id", "1", "--read-limit", "0"}, "want a positive size"},
		{[]string{"serve", "--handshake-rate", "fast"}, `invalid value "fast" for flag -handshake-rate: want R[/s][,BURST]`},
		{[]string{"onebot", "serve", "--self-id", "1", "--handshake-rate", "100/s,0"}, "want R[/s][,BURST]"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestRateFlag(t *testing.T) {
	for _, tc := range []struct {
		in       string
		rate     float64
		burst    int
		ok       bool
		rendered string
	}{
		{"200", 200, 0, true, "200/s"}, {"200/s", 200, 0, true, "200/s"}, {"2.5/s,3", 2.5, 3, true, "2.5/s,3"},
		{" 100 , 10 ", 100, 10, true, "100/s,10"},
		{"", 0, 0, false, ""}, {"0", 0, 0, false, ""}, {"-5", 0, 0, false, ""}, {"NaN", 0, 0, false, ""}, {"Inf", 0, 0, false, ""},
		{"100/m", 0, 0, false, ""}, {"100,", 0, 0, false, ""}, {"100,-1", 0, 0, false, ""}, {"100,1.5", 0, 0, false, ""},
	} {
		var r rateFlag
		err := r.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (r.PerSecond != tc.rate || r.Burst != tc.burst || r.String() != tc.rendered)) {
			t.Errorf("Set(%q) = %+v (%q), %v; want %v/s burst %d, ok=%v", tc.in, r, r.String(), err, tc.rate, tc.burst, tc.ok)
		}
	}
}

// `lifeline serve --handshake-rate 1,1` admits one handshake and answers
// the next with 503 and a Retry-After, and /stats counts it.
func TestServeHandshakeRate(t *testing.T) {
	addr, _ := startServe(t, "--handshake-rate", "1/s,1")
	var got []string
	for range 2 {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got = append(got, strconv.Itoa(resp.StatusCode)+" "+resp.Header.Get("Retry-After"))
	}
	if want := []string{"400 ", "503 1"}; !slices.Equal(got, want) {
		t.Fatalf("answers %q, want %q (the first passes the bucket and fails the upgrade)", got, want)
	}
	if st := getStats(t, addr, ""); st["rate_limited"] != 1.0 {
		t.Errorf("stats rate_limited = %v, want 1", st["rate_limited"])
	}
}
