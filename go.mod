module github.com/domo-framework/domo

go 1.24.0

require (
	github.com/pebbe/zmq4 v1.4.0
	github.com/spf13/cobra v1.10.2
	golang.org/x/net v0.50.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/sys v0.41.0 // indirect
)
