package conn

// NewLeakyServer is NewServer with the leaky broken variant (a reaped
// session is never released from the registry): the field report's leak,
// for the external test that shows conn/metrics' anomaly firing on it.
func NewLeakyServer(cfg ServerConfig) (*Server, error) {
	srv, err := NewServer(cfg)
	if err == nil {
		srv.hooks = &testHooks{leaky: true}
	}
	return srv, err
}
