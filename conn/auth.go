package conn

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// TokenEqual reports whether got equals want in time that depends on
// neither their contents nor their lengths: both are hashed first, so
// subtle.ConstantTimeCompare never sees unequal lengths (which it would
// answer early, leaking the token's length).
func TokenEqual(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// BearerToken returns an Authorize hook that accepts requests carrying
// token as `Authorization: Bearer <token>` or, for clients that cannot set
// headers, as the `access_token` query parameter (the OneBot v11
// convention). No credentials: ErrUnauthorized (401). Wrong credentials:
// ErrForbidden (403). The comparison is constant-time (TokenEqual).
func BearerToken(token string) func(*http.Request) error {
	return func(r *http.Request) error {
		got, ok := requestToken(r)
		if !ok {
			return ErrUnauthorized
		}
		if !TokenEqual(got, token) {
			return ErrForbidden
		}
		return nil
	}
}

// requestToken returns the token a request carries, and false if it
// carries none.
func requestToken(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", true // credentials of another kind: wrong, not missing
		}
		return strings.TrimSpace(tok), true
	}
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		return tok, true
	}
	return "", false
}

// BearerHeader returns the header a Client sends to present token.
func BearerHeader(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}
