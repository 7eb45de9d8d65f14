package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestConnectGivesUpAfterOffline(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"connect", "ws://127.0.0.1:1/", "--give-up-after", "200ms",
		"--initial", "10ms", "--max", "20ms", "--log-format", "json"}, io.Discard, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if out := stderr.String(); !strings.Contains(out, "without a proven link (give-up-after)") || !strings.Contains(out, "refused") {
		t.Errorf("stderr lacks a clear give-up message:\n%s", out)
	}
}
