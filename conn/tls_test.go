package conn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// selfSigned returns a certificate for 127.0.0.1 and localhost, made for
// this test run, and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lifeline test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestClientOverTLS: wss:// with a self-signed certificate works when the
// client trusts it, and is a failed attempt (logged with the x509 cause)
// when it does not.
func TestClientOverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv, err := NewServer(ServerConfig{OnMessage: echo, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake errors are expected
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	defer func() { _ = srv.Close(); hs.Close() }()
	url := "wss" + strings.TrimPrefix(hs.URL, "https") + "/"

	t.Run("trusted", func(t *testing.T) {
		got := make(chan string, 1)
		c, rec, _ := newTestClient(t, ClientConfig{URL: url, TLSConfig: &tls.Config{RootCAs: pool},
			OnMessage: func(_ MessageType, d []byte) { got <- string(d) }})
		runClient(t, c)
		rec.wait(t, 5*time.Second, "Connected", countTo(fsm.Connected, 1))
		if err := c.Send(context.Background(), TextMessage, []byte("over tls")); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "over tls" {
				t.Fatalf("echo = %q", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no echo over TLS")
		}
		// A TLS session is read by the goroutine engine whatever the
		// config says: the poll engine reads plain TCP only.
		for _, s := range srv.snapshot() {
			s.mu.Lock()
			_, ok := s.w.(*gorillaWire)
			s.mu.Unlock()
			if !ok {
				t.Errorf("session %d over TLS is not on the goroutine engine", s.ID())
			}
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		b := fastBackoff()
		b.MaxAttempts = 2
		c, _, logs := newTestClient(t, ClientConfig{URL: url, Backoff: b})
		err := c.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Run = %v, want a certificate error", err)
		}
		if !strings.Contains(logs.String(), "certificate") {
			t.Errorf("the TLS failure was not logged with its cause")
		}
	})
}
