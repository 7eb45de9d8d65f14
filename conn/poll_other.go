//go:build !linux

package conn

import "github.com/gorilla/websocket"

// pollSupported: no epoll on this system; EngineAuto reads every session
// with a goroutine.
const pollSupported = false

// pollSet is EnginePoll's readiness loop, which this system lacks.
type pollSet struct{}

func newPollSet(*Server) *pollSet { return nil }

func (srv *Server) detach(*Session, *websocket.Conn) (wire, func()) { return nil, nil }
