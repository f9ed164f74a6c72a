#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster for the journal's tests, from
# Debian's postgresql package (apt-get install postgresql). The cluster lives
# in a temporary directory, listens on a unix socket there and on 127.0.0.1
# at a free port, and trusts local connections.
#
#   eval "$(scripts/postgres-test.sh start)"   # exports DOMO_TEST_POSTGRES and DOMO_TEST_POSTGRES_DIR
#   go test -race ./journal/...
#   scripts/postgres-test.sh stop "$DOMO_TEST_POSTGRES_DIR"
#
# As root, the cluster runs as the postgres user (initdb refuses root).
set -euo pipefail

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
		echo "postgres-test: no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql" >&2
		exit 1
	fi
	echo "$d"
}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case "${1:-}" in
start)
	bin=$(bindir)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/domo-pg.XXXXXX")
	chmod 755 "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-k $dir -h 127.0.0.1 -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start >&2 || { cat "$dir/server.log" >&2; exit 1; }
	as_owner "$bin/createdb" -h "$dir" -p "$port" -U postgres domo_test >&2
	echo "export DOMO_TEST_POSTGRES='host=127.0.0.1 port=$port user=postgres dbname=domo_test sslmode=disable'"
	echo "export DOMO_TEST_POSTGRES_DIR='$dir'"
	;;
stop)
	dir=${2:?usage: postgres-test.sh stop DIR}
	bin=$(bindir)
	as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
	rm -rf "$dir"
	;;
*)
	echo "usage: postgres-test.sh start | stop DIR" >&2
	exit 2
	;;
esac
