package main

import (
	"bytes"
	"context"
	"io"
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
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
