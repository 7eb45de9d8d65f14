package invariant

import (
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// registry tracks registered sessions per server for (f) and (g).
type registry struct {
	perServer []int
	total     int
}

func (g *registry) add(server uint32, d int) {
	for int(server) >= len(g.perServer) {
		g.perServer = append(g.perServer, 0)
	}
	g.perServer[server] += d
	g.total += d
}

func (g *registry) count(server uint32) int {
	if int(server) < len(g.perServer) {
		return g.perServer[server]
	}
	return 0
}

// settled checks (f): every registered session has a live client up on
// it, and every live client that is up is up on a registered session.
func (g *registry) settled(s *Suite, r *trace.Record, idx int) {
	s.check(RegistryMatches)
	live := 0
	var orphanClient, orphanSession uint32 = trace.NoID, trace.NoID
	for id := range s.clients {
		c := &s.clients[id]
		if !c.up || c.exited {
			continue
		}
		live++
		if c.link == trace.NoID || int(c.link) >= len(s.sessions) || !s.sessions[c.link].registered {
			orphanClient = uint32(id)
		}
	}
	for id := range s.sessions {
		f := &s.sessions[id]
		if !f.registered {
			continue
		}
		if c := s.client(f.client); !c.up || c.exited || c.link != uint32(id) {
			orphanSession = uint32(id)
		}
	}
	if live == g.total && orphanClient == trace.NoID && orphanSession == trace.NoID {
		return
	}
	if orphanSession != trace.NoID {
		s.fail(RegistryMatches, r.At, fsm.MachineSession, orphanSession, idx,
			"settled with %d registered sessions for %d live peers; this one has no live peer", g.total, live)
	} else if orphanClient != trace.NoID {
		s.fail(RegistryMatches, r.At, fsm.MachineClient, orphanClient, idx,
			"settled with %d registered sessions for %d live peers; this client is up on no registered session", g.total, live)
	} else {
		s.fail(RegistryMatches, r.At, 0, 0, idx, "settled with %d registered sessions for %d live peers", g.total, live)
	}
}
