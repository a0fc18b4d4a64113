#!/usr/bin/env bash
# Decommission this pod's Spark executor before Kubernetes stops it: the preStop hook Spark
# gives executor pods when spark.decommission.enabled is on (spark.kubernetes.decommission.script).
# The executor JVM gets the decommission signal, takes no new task, finishes the ones it runs and
# exits; the hook waits for that, within the pod's termination grace.
set -u
signal="${SPARK_DECOMMISSION_SIGNAL:-PWR}"
pid="$(pgrep -f 'org\.apache\.spark\..*ExecutorBackend' | head -n 1)"
if [ -z "$pid" ]; then
  echo "decom.sh: no Spark executor in this container" >&2
  exit 0
fi
echo "decom.sh: decommissioning the executor (pid $pid, SIG$signal)" >&2
kill -s "$signal" "$pid" || exit 0
while kill -0 "$pid" 2>/dev/null; do
  sleep 1
done
echo "decom.sh: the executor has exited" >&2
