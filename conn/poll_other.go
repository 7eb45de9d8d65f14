//go:build !linux

package conn

import "github.com/gorilla/websocket"

// pollSupported: no epoll on this system; EngineAuto reads every session
// with a goroutine.
const pollSupported = false

// pollSet is EnginePoll's readiness loop, which this system lacks.
type pollSet struct{}

func newPollSet(*Server) *pollSet { return nil }

// pollerWokeAt: there is no poller.
func (*pollSet) pollerWokeAt() int64 { return 0 }

func (srv *Server) detach(*Session, *websocket.Conn) (wire, func()) { return nil, nil }
