package cluster

import (
	"log/slog"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// logTransition writes a node or peer transition's one line, in the shape
// of every lifeline transition line (conn.LogTransition).
func logTransition(log *slog.Logger, id string, tr *fsm.Transition, cause error) {
	conn.LogTransition(log, id, tr, cause)
}
