#!/usr/bin/env bash
# A throwaway single-node Apache Kafka (KRaft: one process is both broker and controller) for
# tests and local work, listening on 127.0.0.1 only.
#
#   scripts/kafka.sh up     fetch the jars (cached), format storage once, start, wait until ready
#   scripts/kafka.sh down   stop the broker this script started (by the PID in its pid file)
#
# Environment (all optional):
#   KAFKA_VERSION            Kafka release from Maven Central (default 4.4.0)
#   KAFKA_PORT               client listener port (default 9092)
#   KAFKA_CONTROLLER_PORT    KRaft controller listener port (default 9093)
#   KAFKA_ADVERTISED_PORT    port the broker tells clients to use (default KAFKA_PORT; set it to put
#                            a fault-injecting proxy between clients and the broker)
#   KAFKA_DATA_DIR           data, config, log and pid file (default $TMPDIR/punctual-kafka-$KAFKA_PORT,
#                            so `down` finds the broker from the port alone)
#   KAFKA_HEAP               JVM heap flags (default -Xms256m -Xmx512m)
#   KAFKA_START_TIMEOUT      seconds to wait for the broker to serve clients (default 60)
#   KAFKA_STOP_TIMEOUT       seconds between SIGTERM and SIGKILL (default 30)
#   PUNCTUAL_CACHE_DIR       where jars are cached (default $HOME/.cache/punctual)
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_ADVERTISED_PORT=${KAFKA_ADVERTISED_PORT:-$KAFKA_PORT}
KAFKA_DATA_DIR=${KAFKA_DATA_DIR:-${TMPDIR:-/tmp}/punctual-kafka-$KAFKA_PORT}
KAFKA_HEAP=${KAFKA_HEAP:--Xms256m -Xmx512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
CACHE_ROOT=${PUNCTUAL_CACHE_DIR:-$HOME/.cache/punctual}
LIBS=$CACHE_ROOT/kafka-$KAFKA_VERSION/libs
# Pinned so the result does not depend on Maven's built-in (old) default plugin version.
DEPENDENCY_PLUGIN=3.8.1

PID_FILE=$KAFKA_DATA_DIR/kafka.pid
PROPS=$KAFKA_DATA_DIR/server.properties
LOG=$KAFKA_DATA_DIR/kafka.log

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

require_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(java)
  command -v mvn >/dev/null || missing+=(mvn)
  if [ ${#missing[@]} -gt 0 ]; then
    die "missing ${missing[*]}: install them with 'apt-get install -y openjdk-17-jre-headless maven'"
  fi
}

# Broker jars = kafka_2.13 plus its runtime dependencies, resolved by Maven from Maven Central
# (the release tarball is on no registry this machine reaches). Copied into a versioned cache dir
# and marked complete only at the end, so an interrupted download is redone, not half-used.
fetch_jars() {
  [ -f "$LIBS/.complete" ] && return 0
  echo "kafka.sh: fetching Kafka $KAFKA_VERSION jars into $LIBS"
  local work
  work=$(mktemp -d)
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>punctual</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- The Maven artifacts leave the logging backend to the user (the tarball bundles it):
         without log4j-core the broker would log nothing to the log file. Kafka binds
         slf4j 1.7, hence the slf4j 1.x bridge. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>\${log4j.version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>\${log4j.version}</version>
    </dependency>
  </dependencies>
  <properties>
    <log4j.version>2.24.3</log4j.version>
  </properties>
</project>
EOF
  rm -rf "$LIBS.partial"
  mkdir -p "$LIBS.partial"
  if ! mvn -B -q -f "$work/pom.xml" \
    "org.apache.maven.plugins:maven-dependency-plugin:$DEPENDENCY_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.partial" >"$work/mvn.log" 2>&1; then
    tail -n 30 "$work/mvn.log" >&2
    rm -rf "$work" "$LIBS.partial"
    die "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (log above)"
  fi
  rm -rf "$work" "$LIBS"
  touch "$LIBS.partial/.complete"
  mv "$LIBS.partial" "$LIBS"
}

# True when the pid file names a live process that is our broker (guards against a reused PID).
broker_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS" || return 1
  echo "$pid"
}

write_config() {
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh: one KRaft node that is its own controller, loopback only.
process.roles=broker,controller
node.id=1
# A static one-voter quorum: formatting needs no --standalone / --initial-controllers flag.
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_ADVERTISED_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DATA_DIR/data
# One node: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=3
# Off: code under test must create its topics explicitly (as against a production cluster,
# where auto-creation is usually disabled), and a typo'd topic fails instead of appearing.
auto.create.topics.enable=false
# Tests start consumer groups often: don't wait 3 s for more members before the first rebalance.
group.initial.rebalance.delay.ms=0
EOF
  cat >"$KAFKA_DATA_DIR/log4j2.properties" <<EOF
# INFO to the log file only (stdout/stderr go there too); the broker is chatty at DEBUG.
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$LOG
appender.file.append=true
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
EOF
}

# KRaft storage must be formatted once with a cluster id before the first start; a data dir that
# already has meta.properties keeps its data (restarts after `down` reuse it).
format_storage() {
  [ -f "$KAFKA_DATA_DIR/data/meta.properties" ] && return 0
  # A Kafka Uuid is 16 random bytes in URL-safe base64 without padding (what
  # `kafka-storage.sh random-uuid` prints); generated here to save a JVM start. One starting with
  # '-' would be read as an option, as Kafka's own generator also avoids.
  local cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  # A static voter set (controller.quorum.voters) formats without --standalone or
  # --initial-controllers, which only a dynamic quorum (controller.quorum.bootstrap.servers) needs.
  # C1-only JIT and serial GC: this JVM lives 2 s, not worth compiling for (4 s -> 2.4 s here).
  java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$LIBS/*" \
    -Dlog4j2.configurationFile="$KAFKA_DATA_DIR/log4j2.properties" \
    kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$PROPS" --ignore-formatted \
    >>"$LOG" 2>&1 || { tail -n 20 "$LOG" >&2; die "formatting $KAFKA_DATA_DIR/data failed"; }
}

# A Metadata v4 request over bash's /dev/tcp: the broker lists itself only once it is registered
# and unfenced, which is when clients can produce and consume. Succeeds when the response's
# broker count is at least 1.
serves_clients() {
  local reply
  # timeout: a listener that accepts but never answers must not hang the poll loop.
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash, on purpose
  reply=$(
    timeout 3 bash -c '
      exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      # size 23 | api_key 3 (Metadata) | version 4 | correlation id 1 | client id "kafka.sh"
      # | topics: empty array (none) | allow_auto_topic_creation false
      printf "\x00\x00\x00\x17\x00\x03\x00\x04\x00\x00\x00\x01\x00\x08kafka.sh\x00\x00\x00\x00\x00" >&3
      # size(4) correlation id(4) throttle(4) broker count(4)
      head -c 16 <&3 | od -An -tu1' _ "$KAFKA_PORT" 2>/dev/null
  ) || return 1
  local bytes
  read -ra bytes <<<"$reply"
  [ ${#bytes[@]} -eq 16 ] || return 1
  [ $((bytes[12] + bytes[13] + bytes[14] + bytes[15])) -gt 0 ]
}

# Polls until the broker serves clients; fails with the log tail if it dies or times out.
wait_ready() {
  local pid=$1 deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  until serves_clients; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$LOG" >&2
      rm -f "$PID_FILE"
      die "broker exited during startup (log: $LOG)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 40 "$LOG" >&2
      die "broker (pid $pid) did not serve clients on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s (log: $LOG; still running: 'scripts/kafka.sh down' stops it)"
    fi
    sleep 0.3
  done
}

up() {
  require_tools
  mkdir -p "$KAFKA_DATA_DIR"
  local pid
  if pid=$(broker_pid); then
    # Started earlier (maybe by an `up` that timed out): just wait for it to be ready.
    wait_ready "$pid"
    echo "kafka.sh: broker already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  fetch_jars
  write_config
  format_storage
  # setsid: the broker outlives this script and is not hit by signals sent to the caller's process
  # group; stdin/stdout/stderr are detached so a caller reading our output is not kept waiting.
  # shellcheck disable=SC2086 # KAFKA_HEAP is a list of flags
  setsid java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DATA_DIR/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" </dev/null >>"$LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  wait_ready "$pid"
  echo "kafka.sh: broker ready on 127.0.0.1:$KAFKA_PORT (pid $pid, data $KAFKA_DATA_DIR)"
}

down() {
  local pid
  if ! pid=$(broker_pid); then
    rm -f "$PID_FILE"
    echo "kafka.sh: no broker of ours running for $KAFKA_DATA_DIR"
    return 0
  fi
  # SIGTERM runs Kafka's controlled shutdown (flushes logs, closes cleanly); SIGKILL only if stuck.
  kill -TERM "$pid"
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "kafka.sh: broker (pid $pid) still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  echo "kafka.sh: broker (pid $pid) stopped"
}

case "${1:-}" in
up) up ;;
down) down ;;
*) die "usage: $0 up|down (see the comment at the top for the environment variables)" ;;
esac
