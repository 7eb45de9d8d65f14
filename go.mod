module github.com/lifeline-go/lifeline

go 1.25.0

require (
	github.com/qmuntal/stateless v1.7.2
	pgregory.net/rapid v1.3.0
)
