{{/* The History Server's name: its Deployment, Service, ConfigMap and NetworkPolicy. */}}
{{- define "fruits.historyServer.name" -}}
{{- printf "%s-history-server" (include "fruits.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Its labels: the chart's, as component history-server with an instance of its own (the run's
NetworkPolicy selects the run's instance), without the run label (it is no run). fruitsctl finds
its Service by name + component (fruits.cluster.history_server). */}}
{{- define "fruits.historyServer.labels" -}}
{{- $labels := include "fruits.labels" . | fromYaml -}}
{{- $_ := unset $labels "fruits.io/run" -}}
{{- $_ := set $labels "app.kubernetes.io/component" "history-server" -}}
{{- $_ := set $labels "app.kubernetes.io/instance" (include "fruits.historyServer.name" .) -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "fruits.historyServer.selector" -}}
app.kubernetes.io/name: fruits-pipeline
app.kubernetes.io/instance: {{ include "fruits.historyServer.name" . }}
app.kubernetes.io/component: history-server
{{- end -}}

{{- define "fruits.historyServer.logDirectory" -}}
{{- $directory := .Values.historyServer.logDirectory | default .Values.cluster.eventLogDir -}}
{{- required "historyServer.enabled needs historyServer.logDirectory or cluster.eventLogDir: the s3a:// prefix where the runs write their event logs" $directory -}}
{{- end -}}

{{/* The job's S3 settings as Hadoop's S3A configuration, as fruits.io.s3_settings
S3Settings.hadoop_conf_without_keys makes them (tests/unit/test_chart.py holds the two equal):
static keys stay in the pod's environment (cluster.s3Secret), where the SDK reads them. */}}
{{- define "fruits.historyServer.s3aConf" -}}
{{- $job := .Values.job -}}
{{- $endpoint := toString (default "" $job.s3Endpoint) -}}
{{- $tls := and $job.s3Tls (not (hasPrefix "http://" $endpoint)) -}}
{{- $providers := dict
  "irsa" "com.amazonaws.auth.WebIdentityTokenCredentialsProvider"
  "static" "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
  "default" "com.amazonaws.auth.DefaultAWSCredentialsProviderChain" -}}
fs.s3a.impl: org.apache.hadoop.fs.s3a.S3AFileSystem
fs.s3.impl: org.apache.hadoop.fs.s3a.S3AFileSystem
fs.s3a.path.style.access: {{ toString $job.s3PathStyle | quote }}
fs.s3a.connection.ssl.enabled: {{ toString $tls | quote }}
fs.s3a.signing-algorithm: AWSS3V4SignerType
fs.s3a.connection.establish.timeout: "5000"
fs.s3a.connection.timeout: "6000"
fs.s3a.attempts.maximum: "3"
fs.s3a.retry.limit: "3"
{{- if $endpoint }}
fs.s3a.endpoint: {{ regexReplaceAll "/+$" (regexReplaceAll "^.*?://" $endpoint "") "" | quote }}
{{- with $job.s3Region }}
fs.s3a.endpoint.region: {{ . | quote }}
{{- end }}
{{- else if $job.s3Region }}
fs.s3a.endpoint: {{ printf "s3.%s.amazonaws.com" $job.s3Region | quote }}
{{- end }}
fs.s3a.aws.credentials.provider: {{ get $providers (toString $job.s3Credentials) }}
{{- end -}}

{{/* Its Spark properties file (--properties-file), in key order. */}}
{{- define "fruits.historyServer.properties" -}}
{{- $hs := .Values.historyServer -}}
{{- $conf := dict
  "spark.history.fs.logDirectory" (include "fruits.historyServer.logDirectory" .)
  "spark.history.ui.port" (toString $hs.port)
  "spark.history.fs.update.interval" $hs.updateInterval
  "spark.history.store.path" "/var/lib/spark-history"
  "spark.history.fs.cleaner.enabled" (toString $hs.cleaner.enabled) -}}
{{- if $hs.cleaner.enabled -}}
{{- $_ := set $conf "spark.history.fs.cleaner.maxAge" $hs.cleaner.maxAge -}}
{{- $_ := set $conf "spark.history.fs.cleaner.interval" $hs.cleaner.interval -}}
{{- end -}}
{{- range $key, $value := include "fruits.historyServer.s3aConf" . | fromYaml -}}
{{- $_ := set $conf (printf "spark.hadoop.%s" $key) $value -}}
{{- end -}}
{{- range $key, $value := $conf }}
{{ $key }}={{ $value }}
{{- end }}
{{- end -}}
