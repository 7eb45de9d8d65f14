module github.com/lifeline-go/lifeline

go 1.25.0

require (
	github.com/benbjohnson/clock v1.3.5 // indirect
	github.com/qmuntal/stateless v1.7.2 // indirect
	pgregory.net/rapid v1.3.0 // indirect
)
