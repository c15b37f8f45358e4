#!/usr/bin/env bash
# Start and stop the backing services of logplatform for development and CI:
# PostgreSQL, Redis and Kafka (KRaft mode), each bound to 127.0.0.1, with all
# data and logs under .services/ in the project root, or in the folder that
# LOGPLATFORM_SERVICES_DIR names.
#
# Usage: scripts/services.sh up|down|status|start NAME|stop NAME
#   NAME is postgres, redis or kafka.
#
# Environment variables and their defaults:
#   POSTGRES_PORT=5432  REDIS_PORT=6379
#   KAFKA_PORT=9092  KAFKA_CONTROLLER_PORT=9093
#   KAFKA_TOPIC=logs  KAFKA_DLQ_TOPIC=logs.dlq  KAFKA_PARTITIONS=4
#   KAFKA_READY_TIMEOUT_SECONDS=90
#   LOGPLATFORM_SERVICES_DIR=<project root>/.services
#
# Missing Debian packages (postgresql, redis-server, openjdk-17-jre-headless,
# maven) are installed with apt-get, which needs root. The Kafka jars come from
# Maven Central through scripts/kafka/pom.xml.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
PROJECT_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
SERVICES_DIR=${LOGPLATFORM_SERVICES_DIR:-$PROJECT_ROOT/.services}
LOG_DIR=$SERVICES_DIR/logs

POSTGRES_PORT=${POSTGRES_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_TOPIC=${KAFKA_TOPIC:-logs}
KAFKA_DLQ_TOPIC=${KAFKA_DLQ_TOPIC:-logs.dlq}
KAFKA_PARTITIONS=${KAFKA_PARTITIONS:-4}
KAFKA_READY_TIMEOUT_SECONDS=${KAFKA_READY_TIMEOUT_SECONDS:-90}

# The role and database that .env.example's DATABASE_URL points at.
DB_NAME=logplatform
DB_USER=logplatform
DB_PASSWORD=logplatform

POSTGRES_DIR=$SERVICES_DIR/postgres
POSTGRES_DATA=$POSTGRES_DIR/data
POSTGRES_LOG=$LOG_DIR/postgres.log

REDIS_DIR=$SERVICES_DIR/redis
REDIS_DATA=$REDIS_DIR/data
REDIS_CONF=$REDIS_DIR/redis.conf
REDIS_PIDFILE=$REDIS_DIR/redis.pid
REDIS_LOG=$LOG_DIR/redis.log

KAFKA_DIR=$SERVICES_DIR/kafka
KAFKA_LIB=$KAFKA_DIR/lib
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_CONF=$KAFKA_DIR/server.properties
KAFKA_LOG4J_CONF=$KAFKA_DIR/log4j2.properties
KAFKA_TOOLS_LOG4J_CONF=$KAFKA_DIR/tools-log4j2.properties
KAFKA_PIDFILE=$KAFKA_DIR/kafka.pid
KAFKA_TOPICS_STAMP=$KAFKA_DIR/topics.stamp
KAFKA_LOG=$LOG_DIR/kafka.log
KAFKA_POM=$SCRIPT_DIR/kafka/pom.xml
MAVEN_LOG=$LOG_DIR/maven.log
APT_LOG=$LOG_DIR/apt.log

# kafka.log is moved aside at start once it is larger than this, so a
# long-lived checkout does not fill the disk with broker logs.
KAFKA_LOG_ROTATE_BYTES=$((50 * 1024 * 1024))

SERVICE_NAMES=(postgres redis kafka)
# A file rather than a variable records that 'apt-get update' ran, because
# some installs happen inside command substitutions, whose variables are lost.
APT_UPDATED_MARKER=${TMPDIR:-/tmp}/logplatform-services-apt-updated.$$
trap 'rm -f "$APT_UPDATED_MARKER"' EXIT

# ---------------------------------------------------------------------------
# General helpers
# ---------------------------------------------------------------------------

usage() {
    cat <<EOF
Usage: scripts/services.sh COMMAND

Commands:
  up           start postgres, redis and kafka, and create the Kafka topics
  down         stop all three
  status       print state, address, pid and data folder of each service
  start NAME   start one service (postgres, redis or kafka)
  stop NAME    stop one service

Ports and topics come from POSTGRES_PORT, REDIS_PORT, KAFKA_PORT,
KAFKA_CONTROLLER_PORT, KAFKA_TOPIC, KAFKA_DLQ_TOPIC and KAFKA_PARTITIONS.
Data and logs are kept in $SERVICES_DIR (set LOGPLATFORM_SERVICES_DIR to
choose another folder).
EOF
}

say() {
    printf '%s\n' "$*"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Print the last lines of a log file to stderr, to show why a step failed.
show_log_tail() {
    local file=$1 lines=${2:-40}
    if [[ -s $file ]]; then
        printf -- '--- last %s lines of %s ---\n' "$lines" "$file" >&2
        tail -n "$lines" -- "$file" >&2
        printf -- '--- end of %s ---\n' "$file" >&2
    fi
}

now() {
    printf '%s' "$EPOCHREALTIME"
}

# Print the seconds since START (a value of now) with one decimal.
elapsed_since() {
    awk -v start="$1" -v end="$EPOCHREALTIME" 'BEGIN { printf "%.1f", end - start }'
}

validate_port() {
    local name=$1 value=$2
    if ! [[ $value =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
        die "$name=$value is not a valid TCP port (expected 1-65535)."
    fi
}

# Kafka accepts topic names of 1 to 249 characters from [a-zA-Z0-9._-].
validate_topic() {
    local name=$1 value=$2
    if ! [[ $value =~ ^[a-zA-Z0-9._-]{1,249}$ ]] || [[ $value == . || $value == .. ]]; then
        die "$name='$value' is not a valid Kafka topic name (use 1-249 of a-z A-Z 0-9 . _ -)."
    fi
}

validate_settings() {
    validate_port POSTGRES_PORT "$POSTGRES_PORT"
    validate_port REDIS_PORT "$REDIS_PORT"
    validate_port KAFKA_PORT "$KAFKA_PORT"
    validate_port KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
    if ((KAFKA_PORT == KAFKA_CONTROLLER_PORT)); then
        die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ, but both are $KAFKA_PORT."
    fi
    validate_topic KAFKA_TOPIC "$KAFKA_TOPIC"
    validate_topic KAFKA_DLQ_TOPIC "$KAFKA_DLQ_TOPIC"
    if ! [[ $KAFKA_PARTITIONS =~ ^[1-9][0-9]*$ ]]; then
        die "KAFKA_PARTITIONS=$KAFKA_PARTITIONS is not a positive integer."
    fi
    if ! [[ $KAFKA_READY_TIMEOUT_SECONDS =~ ^[1-9][0-9]*$ ]]; then
        die "KAFKA_READY_TIMEOUT_SECONDS=$KAFKA_READY_TIMEOUT_SECONDS is not a positive integer."
    fi
}

# Succeed when something accepts TCP connections on 127.0.0.1:PORT. Linux
# refuses a connection to a closed loopback port at once, so no timeout is set.
port_is_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Print which process listens on PORT, when ss can tell.
describe_port_owner() {
    if command -v ss >/dev/null; then
        ss -H -l -t -n -p "sport = :$1" 2>/dev/null || true
    fi
}

# Fail when another program already listens on PORT, because the service
# would then fail to bind, or clients would talk to the wrong server.
require_free_port() {
    local service=$1 variable=$2 port=$3
    if port_is_open "$port"; then
        local owner
        owner=$(describe_port_owner "$port")
        die "$service: port $port ($variable) on 127.0.0.1 is already in use by another program${owner:+:
$owner}
Stop that program (for a system service, e.g. 'service redis-server stop'), or choose another port with $variable."
    fi
}

# Succeed when PID is a live process whose command line contains PATTERN.
# Checking the command line guards against a stale pidfile whose number the
# kernel has given to an unrelated process since.
pid_matches() {
    local pid=$1 pattern=$2 cmdline
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$pattern"* ]]
}

# Send SIGTERM to PID and wait up to TIMEOUT seconds for it to exit, then
# send SIGKILL. Returns 0 once the process is gone.
terminate_process() {
    local service=$1 pid=$2 timeout=$3 deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "$service: pid $pid did not exit within ${timeout}s of SIGTERM; sending SIGKILL."
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    ! kill -0 "$pid" 2>/dev/null
}

# Install Debian packages with apt-get, running 'apt-get update' at most once
# per invocation because a fresh machine may have no package lists yet.
apt_install() {
    if ((EUID != 0)); then
        die "missing package(s) $*. Install them with 'apt-get install $*' as root, or run this script as root."
    fi
    mkdir -p "$LOG_DIR"
    if [[ ! -e $APT_UPDATED_MARKER ]]; then
        say "apt-get update (output in $APT_LOG)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get update </dev/null >>"$APT_LOG" 2>&1; then
            show_log_tail "$APT_LOG"
            die "apt-get update failed."
        fi
        touch "$APT_UPDATED_MARKER"
    fi
    # Debian starts a newly installed daemon (Redis on 6379, a PostgreSQL
    # cluster on 5432) unless policy-rc.d forbids it, and that daemon would
    # hold the port this script binds. Forbid it for the install when the
    # machine has no policy of its own.
    local policy=/usr/sbin/policy-rc.d added_policy=0 status=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        added_policy=1
    fi
    say "apt-get install $* (output in $APT_LOG)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
        </dev/null >>"$APT_LOG" 2>&1 || status=$?
    if ((added_policy)); then
        rm -f "$policy"
    fi
    if ((status != 0)); then
        show_log_tail "$APT_LOG"
        die "apt-get install $* failed."
    fi
}

# Take an exclusive lock for the rest of the run, so that two concurrent
# invocations (say, two 'make test' runs) do not initialise or start the same
# service twice. Every daemon is started with descriptor 9 closed, so that
# the lock is released when this script exits.
acquire_lock() {
    mkdir -p "$SERVICES_DIR" "$LOG_DIR"
    exec 9>"$SERVICES_DIR/.lock"
    if ! flock -w 300 9; then
        die "timed out after 300 s waiting for another scripts/services.sh run (lock $SERVICES_DIR/.lock)."
    fi
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# PostgreSQL will not run as root, so as root its commands run as the
# postgres user. A non-root developer runs them as themself.
as_postgres() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Print the bin folder of the PostgreSQL version that owns the data folder,
# or of the newest installed version for a new data folder.
postgres_bin_dir() {
    local version bin_dir
    if [[ -f $POSTGRES_DATA/PG_VERSION ]]; then
        version=$(<"$POSTGRES_DATA/PG_VERSION")
        bin_dir=/usr/lib/postgresql/$version/bin
        if [[ ! -x $bin_dir/postgres ]]; then
            die "postgres: $POSTGRES_DATA was created by PostgreSQL $version, which is not installed. Install postgresql-$version, or delete $POSTGRES_DIR to start with an empty database."
        fi
        printf '%s' "$bin_dir"
        return
    fi
    bin_dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    if [[ -z $bin_dir ]]; then
        apt_install postgresql >&2
        bin_dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
        [[ -n $bin_dir ]] || die "postgres: no PostgreSQL server found in /usr/lib/postgresql after installing postgresql."
    fi
    printf '%s' "$bin_dir"
}

# Print the postmaster's pid when our server runs.
postgres_pid() {
    local pid
    [[ -r $POSTGRES_DATA/postmaster.pid ]] || return 1
    pid=$(head -n 1 "$POSTGRES_DATA/postmaster.pid")
    pid_matches "$pid" "postgres -D $POSTGRES_DATA" || return 1
    printf '%s' "$pid"
}

# Print the port of the running server, which postmaster.pid stores on line 4.
postgres_running_port() {
    sed -n 4p "$POSTGRES_DATA/postmaster.pid" 2>/dev/null
}

# The postgres user must be able to enter every folder above the data folder.
# A clone under /root (mode 700), for example, is not reachable.
check_postgres_can_traverse() {
    ((EUID == 0)) || return 0
    if runuser -u postgres -- test -x "$SERVICES_DIR" 2>/dev/null; then
        return 0
    fi
    local path="" part blocked=$SERVICES_DIR
    local -a parts
    IFS=/ read -r -a parts <<<"${SERVICES_DIR#/}"
    for part in "${parts[@]}"; do
        path=$path/$part
        if ! runuser -u postgres -- test -x "$path" 2>/dev/null; then
            blocked=$path
            break
        fi
    done
    die "postgres: the postgres user cannot enter $blocked ($(stat -c '%A owner %U' "$blocked")), so PostgreSQL cannot reach its data folder $POSTGRES_DATA. Clone the project into a folder that other users can traverse, or allow it with 'chmod o+x $blocked'."
}

# A Unix socket path is limited to 107 bytes, so a deep clone path cannot
# hold the socket in .services/postgres.
check_postgres_socket_path() {
    local socket=$POSTGRES_DIR/.s.PGSQL.$POSTGRES_PORT
    if ((${#socket} > 107)); then
        die "postgres: the socket path $socket is ${#socket} bytes long, but Unix sockets allow at most 107. Clone the project into a shorter path."
    fi
}

# Quote VALUE as a PostgreSQL configuration string.
postgres_quote() {
    local value=$1
    printf "'%s'" "${value//\'/\'\'}"
}

postgres_init() {
    local bin_dir=$1 output
    say "postgres: creating a new cluster in $POSTGRES_DATA"
    # The pg_hba.conf written after initdb replaces initdb's own, so these
    # --auth values only matter if that write fails.
    if ! output=$(as_postgres "$bin_dir/initdb" -D "$POSTGRES_DATA" --username=postgres \
        --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 2>&1 9>&-); then
        printf '%s\n' "$output" >&2
        die "postgres: initdb failed for $POSTGRES_DATA."
    fi
    # The superuser connects through the socket with peer authentication, so
    # it needs no password. Every TCP connection needs a SCRAM password.
    cat >"$POSTGRES_DATA/pg_hba.conf" <<'EOF'
# Written by scripts/services.sh.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 peer
host    all       all   127.0.0.1/32  scram-sha-256
EOF
    # Later starts rewrite logplatform.conf, so settings changed in this
    # script apply to an existing cluster too.
    printf "\n# Settings of scripts/services.sh, rewritten at every start.\ninclude_if_exists = 'logplatform.conf'\n" \
        >>"$POSTGRES_DATA/postgresql.conf"
    chown postgres:postgres "$POSTGRES_DATA/pg_hba.conf" "$POSTGRES_DATA/postgresql.conf" 2>/dev/null || true
}

postgres_write_config() {
    cat >"$POSTGRES_DATA/logplatform.conf" <<EOF
# Written by scripts/services.sh at every start, so edit the script instead.
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
unix_socket_directories = $(postgres_quote "$POSTGRES_DIR")
password_encryption = 'scram-sha-256'
max_connections = 200
shared_buffers = 256MB
# Durability stays on, so a crash of the development machine loses nothing
# that a commit confirmed.
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    if ((EUID == 0)); then
        chown postgres:postgres "$POSTGRES_DATA/logplatform.conf"
    fi
}

# Run one SQL statement as the superuser through the Unix socket and print
# its unaligned result.
postgres_sql() {
    local bin_dir=$1 port=$2 sql=$3
    as_postgres "$bin_dir/psql" -X -q -t -A -v ON_ERROR_STOP=1 \
        -h "$POSTGRES_DIR" -p "$port" -U postgres -d postgres -c "$sql" 9>&-
}

# Create the application role and database when either is missing. The role
# is a superuser because pytest-django creates and drops a test database.
postgres_ensure_database() {
    local bin_dir=$1 port=$2 counts role_count database_count
    counts=$(postgres_sql "$bin_dir" "$port" \
        "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = '$DB_USER') || ' ' || (SELECT count(*) FROM pg_database WHERE datname = '$DB_NAME')") ||
        die "postgres: could not query roles and databases through $POSTGRES_DIR (see $POSTGRES_LOG)."
    read -r role_count database_count <<<"$counts"
    if [[ $role_count == 0 ]]; then
        postgres_sql "$bin_dir" "$port" \
            "CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD'" >/dev/null ||
            die "postgres: could not create role $DB_USER."
        say "postgres: created role $DB_USER"
    fi
    if [[ $database_count == 0 ]]; then
        postgres_sql "$bin_dir" "$port" "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null ||
            die "postgres: could not create database $DB_NAME."
        say "postgres: created database $DB_NAME owned by $DB_USER"
    fi
}

postgres_wait_ready() {
    local bin_dir=$1 port=$2 timeout=$3 deadline
    deadline=$((SECONDS + timeout))
    until "$bin_dir/pg_isready" -q -h 127.0.0.1 -p "$port"; do
        if ((SECONDS >= deadline)); then
            show_log_tail "$POSTGRES_LOG"
            die "postgres: pg_isready on 127.0.0.1:$port did not pass within ${timeout}s."
        fi
        sleep 0.2
    done
}

start_postgres() {
    local started pid bin_dir running_port output
    started=$(now)
    if pid=$(postgres_pid); then
        running_port=$(postgres_running_port)
        if [[ $running_port != "$POSTGRES_PORT" ]]; then
            die "postgres: already running on port $running_port (pid $pid), not on POSTGRES_PORT=$POSTGRES_PORT. Run 'scripts/services.sh stop postgres' first."
        fi
        bin_dir=$(postgres_bin_dir)
        postgres_wait_ready "$bin_dir" "$running_port" 30
        postgres_ensure_database "$bin_dir" "$running_port"
        say "postgres: already running on 127.0.0.1:$running_port (pid $pid)"
        return
    fi

    require_free_port postgres POSTGRES_PORT "$POSTGRES_PORT"
    check_postgres_socket_path
    bin_dir=$(postgres_bin_dir)
    if ((EUID == 0)) && ! id postgres >/dev/null 2>&1; then
        die "postgres: the postgres user is missing. Reinstall the postgresql package."
    fi
    mkdir -p "$POSTGRES_DIR" "$LOG_DIR"
    check_postgres_can_traverse
    if ((EUID == 0)); then
        # The socket folder and the data folder must belong to postgres.
        chown postgres:postgres "$POSTGRES_DIR"
        [[ -d $POSTGRES_DATA ]] && chown -R postgres:postgres "$POSTGRES_DATA"
        touch "$POSTGRES_LOG"
        chown postgres:postgres "$POSTGRES_LOG"
    fi
    chmod 0700 "$POSTGRES_DIR"
    if [[ ! -f $POSTGRES_DATA/PG_VERSION ]]; then
        postgres_init "$bin_dir"
    fi
    postgres_write_config

    if ! output=$(as_postgres "$bin_dir/pg_ctl" -D "$POSTGRES_DATA" -l "$POSTGRES_LOG" \
        -w -t 60 start 2>&1 9>&-); then
        printf '%s\n' "$output" >&2
        show_log_tail "$POSTGRES_LOG"
        die "postgres: pg_ctl start failed for $POSTGRES_DATA."
    fi
    postgres_wait_ready "$bin_dir" "$POSTGRES_PORT" 60
    postgres_ensure_database "$bin_dir" "$POSTGRES_PORT"
    pid=$(postgres_pid) || die "postgres: started, but $POSTGRES_DATA/postmaster.pid names no running server."
    say "postgres: started on 127.0.0.1:$POSTGRES_PORT (pid $pid) in $(elapsed_since "$started")s"
}

stop_postgres() {
    local pid bin_dir output
    if ! pid=$(postgres_pid); then
        say "postgres: not running"
        return
    fi
    bin_dir=$(postgres_bin_dir)
    # Fast shutdown rolls back open transactions instead of waiting for
    # clients such as a forgotten psql session to disconnect.
    if ! output=$(as_postgres "$bin_dir/pg_ctl" -D "$POSTGRES_DATA" -m fast -w -t 60 stop 2>&1 9>&-); then
        printf '%s\n' "$output" >&2
        die "postgres: pg_ctl stop failed for pid $pid."
    fi
    say "postgres: stopped (was pid $pid)"
}

status_postgres() {
    local pid port=$POSTGRES_PORT
    if pid=$(postgres_pid); then
        port=$(postgres_running_port)
        print_status postgres running "$port" "$pid" "$POSTGRES_DATA"
    else
        print_status postgres stopped "$port" - "$POSTGRES_DATA"
    fi
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

redis_pid() {
    local pid
    [[ -r $REDIS_PIDFILE ]] || return 1
    pid=$(<"$REDIS_PIDFILE")
    # Redis sets its process title to "redis-server ADDRESS:PORT".
    pid_matches "$pid" "redis-server 127.0.0.1:$(redis_running_port)" || return 1
    printf '%s' "$pid"
}

# Print the port from the configuration the running server was started with.
redis_running_port() {
    sed -n 's/^port \([0-9]*\)$/\1/p' "$REDIS_CONF" 2>/dev/null
}

# Quote VALUE as a Redis configuration string.
redis_quote() {
    local value=$1
    value=${value//\\/\\\\}
    printf '"%s"' "${value//\"/\\\"}"
}

redis_write_config() {
    cat >"$REDIS_CONF" <<EOF
# Written by scripts/services.sh at every start, so edit the script instead.
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
daemonize yes
supervised no
pidfile $(redis_quote "$REDIS_PIDFILE")
logfile $(redis_quote "$REDIS_LOG")
loglevel notice
dir $(redis_quote "$REDIS_DATA")
# The append-only file keeps queued Celery tasks across restarts, and loses
# at most about one second of writes when the machine crashes.
appendonly yes
appendfsync everysec
save 3600 1 300 100 60 10000
EOF
}

redis_wait_ready() {
    local port=$1 timeout=$2 deadline
    deadline=$((SECONDS + timeout))
    until [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; do
        if ((SECONDS >= deadline)); then
            show_log_tail "$REDIS_LOG"
            die "redis: 'redis-cli -p $port ping' did not return PONG within ${timeout}s."
        fi
        sleep 0.1
    done
}

start_redis() {
    local started pid running_port
    started=$(now)
    if pid=$(redis_pid); then
        running_port=$(redis_running_port)
        if [[ $running_port != "$REDIS_PORT" ]]; then
            die "redis: already running on port $running_port (pid $pid), not on REDIS_PORT=$REDIS_PORT. Run 'scripts/services.sh stop redis' first."
        fi
        redis_wait_ready "$running_port" 30
        say "redis: already running on 127.0.0.1:$running_port (pid $pid)"
        return
    fi

    require_free_port redis REDIS_PORT "$REDIS_PORT"
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
    fi
    mkdir -p "$REDIS_DATA" "$LOG_DIR"
    rm -f "$REDIS_PIDFILE"
    redis_write_config
    # redis-server forks into the background itself (daemonize yes) and
    # sends its output to the log file.
    if ! redis-server "$REDIS_CONF" </dev/null >>"$REDIS_LOG" 2>&1 9>&-; then
        show_log_tail "$REDIS_LOG"
        die "redis: redis-server $REDIS_CONF failed to start."
    fi
    redis_wait_ready "$REDIS_PORT" 30
    pid=$(redis_pid) || die "redis: the server returns PONG, but $REDIS_PIDFILE names no running redis-server."
    say "redis: started on 127.0.0.1:$REDIS_PORT (pid $pid) in $(elapsed_since "$started")s"
}

stop_redis() {
    local pid
    if ! pid=$(redis_pid); then
        say "redis: not running"
        return
    fi
    # On SIGTERM Redis flushes the append-only file before it exits.
    terminate_process redis "$pid" 30 || die "redis: pid $pid is still running after SIGKILL."
    rm -f "$REDIS_PIDFILE"
    say "redis: stopped (was pid $pid)"
}

status_redis() {
    local pid port=$REDIS_PORT
    if pid=$(redis_pid); then
        port=$(redis_running_port)
        print_status redis running "$port" "$pid" "$REDIS_DATA"
    else
        print_status redis stopped "$port" - "$REDIS_DATA"
    fi
}

# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------

# Print the path of a Java 17 or newer, installing OpenJDK 17 when there is
# none, because the Kafka 4 broker requires Java 17.
java_command() {
    local java="" candidate version
    for candidate in "${JAVA_HOME:+$JAVA_HOME/bin/java}" /usr/lib/jvm/java-17-openjdk-*/bin/java "$(command -v java || true)"; do
        if [[ -n $candidate && -x $candidate ]]; then
            version=$("$candidate" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1)
            if [[ -n $version ]] && ((version >= 17)); then
                java=$candidate
                break
            fi
        fi
    done
    if [[ -z $java ]]; then
        apt_install openjdk-17-jre-headless >&2
        java=$(find /usr/lib/jvm -path '*java-17-openjdk-*/bin/java' 2>/dev/null | head -n 1)
        [[ -n $java ]] || die "kafka: no Java 17 found after installing openjdk-17-jre-headless."
    fi
    printf '%s' "$java"
}

# Copy the Kafka jars from Maven Central (or the local Maven repository)
# into .services/kafka/lib. The copy is skipped while the pom it was made
# from is unchanged.
kafka_fetch_jars() {
    local java=$1 pom_hash staging started
    pom_hash=$(sha256sum "$KAFKA_POM" | cut -d ' ' -f 1)
    if [[ -f $KAFKA_LIB/.pom.sha256 && $(<"$KAFKA_LIB/.pom.sha256") == "$pom_hash" ]]; then
        return
    fi
    if ! command -v mvn >/dev/null; then
        apt_install maven
    fi
    started=$(now)
    staging=$KAFKA_DIR/lib.partial
    rm -rf "$staging"
    mkdir -p "$KAFKA_DIR" "$LOG_DIR"
    say "kafka: copying the Kafka jars with Maven (output in $MAVEN_LOG)"
    if ! JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$java")")") \
        mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        -DoutputDirectory="$staging" </dev/null >"$MAVEN_LOG" 2>&1 9>&-; then
        show_log_tail "$MAVEN_LOG"
        rm -rf "$staging"
        die "kafka: Maven could not copy the dependencies of $KAFKA_POM."
    fi
    printf '%s\n' "$pom_hash" >"$staging/.pom.sha256"
    # Renaming a finished folder means an interrupted download never leaves
    # a lib folder that looks complete.
    rm -rf "$KAFKA_LIB"
    mv "$staging" "$KAFKA_LIB"
    say "kafka: copied $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars ($(du -sh "$KAFKA_LIB" | cut -f 1)) in $(elapsed_since "$started")s"
}

kafka_write_config() {
    cat >"$KAFKA_CONF" <<EOF
# Written by scripts/services.sh at every start, so edit the script instead.
# One combined broker and controller in KRaft mode, for development and CI.
process.roles=broker,controller
node.id=1
# A static voter set keeps the controller address in this file, so a new
# KAFKA_CONTROLLER_PORT takes effect at the next start without a reformat.
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=$KAFKA_PARTITIONS
# A single broker cannot hold more than one replica of anything.
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
# Topics are created explicitly, so producing to a misspelt topic name fails
# instead of creating a new topic.
auto.create.topics.enable=false
EOF

    # The broker logs at INFO to standard output, which the start command
    # appends to .services/logs/kafka.log.
    cat >"$KAFKA_LOG4J_CONF" <<'EOF'
# Written by scripts/services.sh: the broker's log4j2 configuration.
status = warn
name = kafka-server
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# Kafka's own default configuration also sets the request logger to WARN,
# because at DEBUG it writes one line per request.
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF

    # The command-line tools print only warnings and errors, to stderr.
    cat >"$KAFKA_TOOLS_LOG4J_CONF" <<'EOF'
# Written by scripts/services.sh: log4j2 configuration of the Kafka tools.
status = warn
name = kafka-tools
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

# Run a Kafka command-line class (StorageTool, TopicCommand) with the jars
# in .services/kafka/lib, killed after 60 s so that a broker that accepts
# connections but never responds cannot hang the script. C1-only compilation
# shortens the JVM start of these short-lived commands.
kafka_tool() {
    local java=$1
    shift
    timeout 60 "$java" -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J_CONF" \
        -cp "$KAFKA_LIB/*" "$@" </dev/null 9>&-
}

# Format the log folder once with a new cluster id. The id is stored in
# data/meta.properties, which marks the folder as formatted.
kafka_format_storage() {
    local java=$1 cluster_id output
    [[ -f $KAFKA_DATA/meta.properties ]] && return
    cluster_id=$(kafka_tool "$java" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    [[ -n $cluster_id ]] || die "kafka: kafka.tools.StorageTool random-uuid printed no cluster id."
    mkdir -p "$KAFKA_DATA"
    # With controller.quorum.voters set, Kafka 4.1 formats a static quorum and
    # takes no --standalone or --initial-controllers option.
    if ! output=$(kafka_tool "$java" kafka.tools.StorageTool format \
        --config "$KAFKA_CONF" --cluster-id "$cluster_id" 2>&1); then
        printf '%s\n' "$output" >&2
        die "kafka: formatting $KAFKA_DATA failed."
    fi
    say "kafka: formatted $KAFKA_DATA with cluster id $cluster_id"
}

kafka_pid() {
    local pid
    [[ -r $KAFKA_PIDFILE ]] || return 1
    pid=$(<"$KAFKA_PIDFILE")
    pid_matches "$pid" "kafka.Kafka $KAFKA_CONF" || return 1
    printf '%s' "$pid"
}

# Print the client port from the configuration the broker was started with.
kafka_running_port() {
    sed -n 's#^listeners=PLAINTEXT://127\.0\.0\.1:\([0-9]*\),.*#\1#p' "$KAFKA_CONF" 2>/dev/null
}

# Byte offset in kafka.log where the output of the current broker starts,
# so the readiness check ignores the lines of earlier runs.
KAFKA_LOG_START_OFFSET=0

# Start the broker in the background without waiting for it. When the broker
# already runs, only check its port and leave KAFKA_LAUNCHED=false.
KAFKA_LAUNCHED=false
KAFKA_LAUNCH_STARTED=
KAFKA_JAVA=
kafka_launch() {
    local pid running_port
    KAFKA_LAUNCH_STARTED=$(now)
    if pid=$(kafka_pid); then
        running_port=$(kafka_running_port)
        if [[ $running_port != "$KAFKA_PORT" ]]; then
            die "kafka: already running on port $running_port (pid $pid), not on KAFKA_PORT=$KAFKA_PORT. Run 'scripts/services.sh stop kafka' first."
        fi
        return
    fi

    require_free_port kafka KAFKA_PORT "$KAFKA_PORT"
    require_free_port kafka KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
    KAFKA_JAVA=$(java_command)
    mkdir -p "$KAFKA_DIR" "$LOG_DIR"
    kafka_fetch_jars "$KAFKA_JAVA"
    kafka_write_config
    kafka_format_storage "$KAFKA_JAVA"

    if [[ -f $KAFKA_LOG ]] && (($(stat -c %s "$KAFKA_LOG") > KAFKA_LOG_ROTATE_BYTES)); then
        mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
    fi
    touch "$KAFKA_LOG"
    KAFKA_LOG_START_OFFSET=$(stat -c %s "$KAFKA_LOG")
    rm -f "$KAFKA_PIDFILE" "$KAFKA_TOPICS_STAMP"
    # nohup and a background job (which ignores SIGINT in a script) keep the
    # broker running after this script and its terminal are gone.
    # preferIPv4Stack makes the listeners plain IPv4 sockets on 127.0.0.1
    # rather than dual-stack sockets that ss shows as [::ffff:127.0.0.1].
    nohup "$KAFKA_JAVA" -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J_CONF" \
        -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONF" \
        </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
    printf '%s\n' "$!" >"$KAFKA_PIDFILE"
    KAFKA_LAUNCHED=true
}

# Wait until the broker started by kafka_launch has logged "Kafka Server
# started" and accepts connections. The topic listing in kafka_ensure_topics
# then proves that it serves requests. A broker that misses the deadline is
# stopped, so the next start begins from a clean state.
kafka_wait_ready() {
    local pid=$1 deadline
    deadline=$((SECONDS + KAFKA_READY_TIMEOUT_SECONDS))
    while true; do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log_tail "$KAFKA_LOG" 60
            rm -f "$KAFKA_PIDFILE"
            die "kafka: the broker (pid $pid) exited during startup."
        fi
        if port_is_open "$KAFKA_PORT" &&
            tail -c "+$((KAFKA_LOG_START_OFFSET + 1))" "$KAFKA_LOG" | grep -q 'Kafka Server started'; then
            break
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$KAFKA_LOG" 60
            terminate_process kafka "$pid" 30 || true
            rm -f "$KAFKA_PIDFILE"
            die "kafka: timed out after ${KAFKA_READY_TIMEOUT_SECONDS}s waiting for the broker (pid $pid) to start, so it was stopped. See $KAFKA_LOG, or raise KAFKA_READY_TIMEOUT_SECONDS."
        fi
        sleep 0.3
    done
}

# Create KAFKA_TOPIC and KAFKA_DLQ_TOPIC unless they exist. A stamp with the
# broker's pid and the topic settings lets a repeated 'up' skip the JVM start
# that listing the topics costs (about 2 s on a 2-core machine).
kafka_ensure_topics() {
    local pid=$1 stamp topics output topic partitions
    stamp="$pid $KAFKA_PORT $KAFKA_TOPIC:$KAFKA_PARTITIONS $KAFKA_DLQ_TOPIC:1"
    if [[ -f $KAFKA_TOPICS_STAMP && $(<"$KAFKA_TOPICS_STAMP") == "$stamp" ]]; then
        return
    fi
    [[ -n $KAFKA_JAVA ]] || KAFKA_JAVA=$(java_command)
    if ! topics=$(kafka_tool "$KAFKA_JAVA" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list 2>&1); then
        printf '%s\n' "$topics" >&2
        show_log_tail "$KAFKA_LOG"
        die "kafka: listing the topics on 127.0.0.1:$KAFKA_PORT failed or timed out after 60s."
    fi
    for topic in "$KAFKA_TOPIC" "$KAFKA_DLQ_TOPIC"; do
        if grep -qxF -- "$topic" <<<"$topics"; then
            continue
        fi
        partitions=1
        [[ $topic == "$KAFKA_TOPIC" ]] && partitions=$KAFKA_PARTITIONS
        if ! output=$(kafka_tool "$KAFKA_JAVA" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "127.0.0.1:$KAFKA_PORT" --create --if-not-exists \
            --topic "$topic" --partitions "$partitions" --replication-factor 1 2>&1); then
            printf '%s\n' "$output" >&2
            die "kafka: creating topic $topic failed."
        fi
        say "kafka: created topic $topic with $partitions partition(s)"
    done
    printf '%s\n' "$stamp" >"$KAFKA_TOPICS_STAMP"
}

# Finish what kafka_launch began: wait for a new broker, then make sure the
# topics exist.
kafka_finish_start() {
    local pid
    pid=$(kafka_pid) || die "kafka: $KAFKA_PIDFILE names no running broker."
    if [[ $KAFKA_LAUNCHED == true ]]; then
        kafka_wait_ready "$pid"
        kafka_ensure_topics "$pid"
        say "kafka: started on 127.0.0.1:$KAFKA_PORT (pid $pid) in $(elapsed_since "$KAFKA_LAUNCH_STARTED")s"
    else
        if ! port_is_open "$KAFKA_PORT"; then
            die "kafka: pid $pid runs but refuses connections on 127.0.0.1:$KAFKA_PORT. See $KAFKA_LOG, then restart it with 'scripts/services.sh stop kafka' and 'scripts/services.sh start kafka'."
        fi
        kafka_ensure_topics "$pid"
        say "kafka: already running on 127.0.0.1:$KAFKA_PORT (pid $pid)"
    fi
}

start_kafka() {
    kafka_launch
    kafka_finish_start
}

stop_kafka() {
    local pid
    if ! pid=$(kafka_pid); then
        rm -f "$KAFKA_PIDFILE" "$KAFKA_TOPICS_STAMP"
        say "kafka: not running"
        return
    fi
    # SIGTERM runs the broker's controlled shutdown, which closes the logs
    # cleanly so the next start skips log recovery.
    terminate_process kafka "$pid" 30 || die "kafka: pid $pid is still running after SIGKILL."
    rm -f "$KAFKA_PIDFILE" "$KAFKA_TOPICS_STAMP"
    say "kafka: stopped (was pid $pid)"
}

status_kafka() {
    local pid port=$KAFKA_PORT
    if pid=$(kafka_pid); then
        port=$(kafka_running_port)
        print_status kafka running "$port" "$pid" "$KAFKA_DATA"
    else
        print_status kafka stopped "$port" - "$KAFKA_DATA"
    fi
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

print_status() {
    local service=$1 state=$2 port=$3 pid=$4 data_dir=$5
    printf '%-9s %-8s 127.0.0.1:%-6s pid %-8s %s\n' "$service" "$state" "$port" "$pid" "$data_dir"
}

# Start all services. The Kafka JVM needs the longest to boot, so it is
# launched first and PostgreSQL and Redis start while it boots.
command_up() {
    local started
    started=$(now)
    kafka_launch
    start_postgres
    start_redis
    kafka_finish_start
    say "all services up in $(elapsed_since "$started")s"
}

command_down() {
    stop_kafka
    stop_redis
    stop_postgres
}

command_status() {
    status_postgres
    status_redis
    status_kafka
}

require_service_name() {
    local name=${1:-}
    local known
    for known in "${SERVICE_NAMES[@]}"; do
        [[ $name == "$known" ]] && return
    done
    if [[ -z $name ]]; then
        printf 'error: missing service name.\n\n' >&2
    else
        printf "error: unknown service '%s' (expected postgres, redis or kafka).\n\n" "$name" >&2
    fi
    usage >&2
    exit 2
}

main() {
    local command=${1:-}
    case $command in
    up | down | start | stop)
        if [[ $command == start || $command == stop ]]; then
            require_service_name "${2:-}"
            (($# == 2)) || {
                usage >&2
                exit 2
            }
        elif (($# != 1)); then
            usage >&2
            exit 2
        fi
        validate_settings
        acquire_lock
        case $command in
        up) command_up ;;
        down) command_down ;;
        start) "start_$2" ;;
        stop) "stop_$2" ;;
        esac
        ;;
    status)
        (($# == 1)) || {
            usage >&2
            exit 2
        }
        validate_settings
        command_status
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        if [[ -n $command ]]; then
            printf "error: unknown command '%s'.\n\n" "$command" >&2
        fi
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
