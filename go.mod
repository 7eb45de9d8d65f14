module github.com/lifeline-go/lifeline

go 1.25.0

require (
	github.com/benbjohnson/clock v1.3.5
	github.com/gorilla/websocket v1.5.3
	github.com/qmuntal/stateless v1.7.2
	go.uber.org/goleak v1.3.0
	pgregory.net/rapid v1.3.0
)
