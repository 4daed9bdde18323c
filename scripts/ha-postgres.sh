#!/usr/bin/env bash
# A highly available PostgreSQL on loopback, for measuring what Varde's
# nodes do when the database's primary fails (docs/RESILIENCE.md,
# Database failover). Not used by `make test` or CI.
#
#   scripts/ha-postgres.sh up DIR            start it all; prints the DSN
#   scripts/ha-postgres.sh status DIR        the members, as Patroni sees them
#   scripts/ha-postgres.sh kill-primary DIR  SIGKILL the primary's postmaster
#   scripts/ha-postgres.sh down DIR          stop it all and remove DIR
#
# What `up` starts, every process as the postgres user, all on 127.0.0.1
# (ports from HA_PORT, default 55440):
#   - etcd, one member (client HA_PORT+21, peer HA_PORT+22): Patroni's
#     store of who leads;
#   - two PostgreSQL 15 servers managed by Patroni, m1 and m2 (PostgreSQL
#     on HA_PORT+1 and +2, Patroni's REST API on HA_PORT+11 and +12): one
#     primary, one streaming replica. synchronous_mode is on: a commit at
#     the primary returns only once the replica has its WAL on disk, so a
#     committed transaction survives the primary's loss. Patroni checks
#     every second (loop_wait 1), and primary_start_timeout 0 makes it
#     fail over at once when the primary's server crashes rather than
#     restart it in place;
#   - HAProxy on HA_PORT: connections to the current primary only, as
#     Patroni's REST API says (GET /primary answers 200 at the primary
#     alone), checked every 250 ms; connections to a member that stops
#     being the primary are closed.
# and creates the database "varde". DIR must not exist, or be empty.
#
# Requires (Debian 12): apt-get install -y patroni etcd-server haproxy
# postgresql-15. Run as root.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
HA_PORT=${HA_PORT:-55440}
PROXY_PORT=$HA_PORT
ETCD_PORT=$((HA_PORT + 21))
ETCD_PEER=$((HA_PORT + 22))
MEMBERS=(m1 m2)

usage() {
	sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

as_pg() { runuser -u postgres -- "$@"; }
pg_port() { echo $((HA_PORT + $1)); }
api_port() { echo $((HA_PORT + 10 + $1)); }

# wait_for SECONDS WHAT CMD...: runs CMD every 0.2 s until it succeeds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "ha-postgres: $what not ready after ${secs}s; logs in $DIR" >&2
			return 1
		fi
		sleep 0.2
	done
}

# start NAME CMD...: starts CMD as postgres in the background, in its own
# session, its output in DIR/NAME.log and its process id in DIR/NAME.pid.
start() {
	local name=$1
	shift
	setsid runuser -u postgres -- sh -c 'echo $$ >"$0"; exec "$@"' "$DIR/$name.pid" "$@" \
		>"$DIR/$name.log" 2>&1 </dev/null &
}

patroni_config() {
	local i=$1 name=${MEMBERS[$(($1 - 1))]}
	cat <<EOF
scope: varde-ha
name: $name
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$(api_port "$i")
  connect_address: 127.0.0.1:$(api_port "$i")
etcd3:
  hosts: 127.0.0.1:$ETCD_PORT
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    primary_start_timeout: 0
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        wal_log_hints: "on"
        hot_standby: "on"
        max_wal_senders: 5
        max_replication_slots: 5
        max_connections: 100
  initdb:
    - encoding: UTF8
    - auth: trust
postgresql:
  listen: 127.0.0.1:$(pg_port "$i")
  connect_address: 127.0.0.1:$(pg_port "$i")
  data_dir: $DIR/$name/data
  bin_dir: $PG_BIN
  pgpass: $DIR/$name/pgpass
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
  parameters:
    unix_socket_directories: $DIR/$name
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
watchdog:
  mode: off
EOF
}

haproxy_config() {
	cat <<EOF
global
  maxconn 500
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 1s
listen primary
  bind 127.0.0.1:$PROXY_PORT
  option httpchk GET /primary
  http-check expect status 200
  default-server inter 250ms fall 2 rise 1 on-marked-down shutdown-sessions
EOF
	for i in 1 2; do
		echo "  server ${MEMBERS[$((i - 1))]} 127.0.0.1:$(pg_port "$i") check port $(api_port "$i")"
	done
}

# primary prints the number (1 or 2) of the member whose REST API says it
# is the primary, or fails.
primary() {
	local i
	for i in 1 2; do
		if curl -fs -m 1 -o /dev/null "http://127.0.0.1:$(api_port "$i")/primary"; then
			echo "$i"
			return 0
		fi
	done
	return 1
}

# synchronous: the cluster has a leader and a synchronous standby that
# streams from it.
synchronous() {
	curl -fsS -m 1 "http://127.0.0.1:$(api_port 1)/cluster" |
		python3 -c 'import json,sys; m=json.load(sys.stdin)["members"]; r=[x["role"] for x in m if x.get("state") in ("running","streaming")]; sys.exit(0 if "leader" in r and "sync_standby" in r else 1)'
}

up() {
	for bin in patroni etcd haproxy "$PG_BIN/postgres"; do
		command -v "$bin" >/dev/null || { echo "ha-postgres: $bin not found (apt-get install -y patroni etcd-server haproxy postgresql-15)" >&2; exit 1; }
	done
	if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
		echo "ha-postgres: $DIR is not empty" >&2
		exit 1
	fi
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	chown postgres: "$DIR"
	chmod 700 "$DIR"
	# down removes only a directory that up made.
	touch "$DIR/.ha-postgres"
	as_pg mkdir -m 700 "$DIR/etcd" "$DIR/m1" "$DIR/m2"

	start etcd etcd --name ha --data-dir "$DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
		--initial-cluster "ha=http://127.0.0.1:$ETCD_PEER" --initial-cluster-state new
	wait_for 20 etcd curl -fsS -m 1 "http://127.0.0.1:$ETCD_PORT/health"

	local i
	for i in 1 2; do
		patroni_config "$i" | as_pg tee "$DIR/${MEMBERS[$((i - 1))]}.yml" >/dev/null
	done
	start m1 patroni "$DIR/m1.yml"
	wait_for 60 "the primary (m1)" primary
	start m2 patroni "$DIR/m2.yml"
	wait_for 90 "the synchronous replica (m2)" synchronous

	haproxy_config | as_pg tee "$DIR/haproxy.cfg" >/dev/null
	start haproxy haproxy -db -f "$DIR/haproxy.cfg"
	wait_for 20 haproxy "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PROXY_PORT"
	wait_for 20 "the database through haproxy" \
		psql -X -q -h 127.0.0.1 -p "$PROXY_PORT" -U postgres -d postgres -c 'CREATE DATABASE varde'
	echo "DSN: postgres://postgres@127.0.0.1:$PROXY_PORT/varde"
	status
}

status() {
	curl -fsS -m 2 "http://127.0.0.1:$(api_port 1)/cluster" 2>/dev/null ||
		curl -fsS -m 2 "http://127.0.0.1:$(api_port 2)/cluster"
	echo
}

kill_primary() {
	local i name pid
	i=$(primary) || { echo "ha-postgres: no member says it is the primary" >&2; exit 1; }
	name=${MEMBERS[$((i - 1))]}
	pid=$(head -n 1 "$DIR/$name/data/postmaster.pid")
	kill -KILL "$pid"
	echo "SIGKILL sent to the postmaster of $name (process $pid, port $(pg_port "$i")), the primary"
}

down() {
	local name pid
	if [ ! -e "$DIR/.ha-postgres" ]; then
		echo "ha-postgres: $DIR was not made by ha-postgres.sh up; leaving it alone" >&2
		exit 1
	fi
	# Patroni stops its PostgreSQL when it stops; then HAProxy and etcd.
	for name in m1 m2 haproxy etcd; do
		if [ -f "$DIR/$name.pid" ]; then
			pid=$(cat "$DIR/$name.pid")
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 1 100); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	# A postmaster Patroni could not stop (its Patroni gone first).
	for name in m1 m2; do
		if [ -f "$DIR/$name/data/postmaster.pid" ]; then
			as_pg "$PG_BIN/pg_ctl" -D "$DIR/$name/data" -m immediate stop >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$DIR"
}

[ $# -eq 2 ] || usage
DIR=$2
case $1 in
up) up ;;
status) status ;;
kill-primary) kill_primary ;;
down) down ;;
*) usage ;;
esac
