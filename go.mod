module github.com/domo-framework/domo

go 1.24

require github.com/pebbe/zmq4 v1.4.0
