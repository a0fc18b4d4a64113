{{/* Full name: the SparkApplication's name and run id (a DNS label, at most 63 characters). */}}
{{- define "fruits.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; the same set fruitsctl puts on the runs it submits. */}}
{{- define "fruits.labels" -}}
app.kubernetes.io/name: fruits-pipeline
app.kubernetes.io/instance: {{ include "fruits.fullname" . }}
app.kubernetes.io/component: featurize
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
fruits.io/run: {{ include "fruits.fullname" . }}
{{- with .Values.cluster.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The job's arguments: every job value that is set, in key order, as the CLI writes them. */}}
{{- define "fruits.arguments" -}}
{{- $job := deepCopy .Values.job -}}
{{- if and (not $job.runId) (not .Values.schedule) -}}
{{- $_ := set $job "runId" (include "fruits.fullname" .) -}}
{{- end -}}
{{- if not (kindIs "invalid" $job.k) -}}
{{- $_ := set $job "variance" nil -}}
{{- end -}}
{{- if eq $job.runtime "tf" -}}
{{- $_ := set $job "precision" "float32" -}}{{/* what the Keras model computes in */}}
{{- end -}}
{{- range $key, $value := $job }}
{{- $flag := printf "--%s" (regexReplaceAll "([A-Z])" $key "-${1}" | lower) }}
{{- if kindIs "invalid" $value }}
{{- else if kindIs "bool" $value }}
- {{ ternary $flag (printf "--no-%s" (trimPrefix "--" $flag)) $value | quote }}
{{- else if kindIs "float64" $value }}
- {{ $flag | quote }}
- {{ ternary (printf "%d" (int64 $value)) (toString $value) (eq $value (float64 (int64 $value))) | quote }}
{{- else }}
- {{ $flag | quote }}
- {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The image: cluster.image (LiteRT and the converted models of the default backbone at its
default size, ImageNet weights), or the one with TensorFlow for any other setting
(fruits.cluster.spark_application.image_for picks the same; a test keeps them equal). */}}
{{- define "fruits.image" -}}
{{- $job := .Values.job -}}
{{- if and (eq $job.runtime "tflite") (eq $job.backbone "mobilenet_v2") (eq (int $job.imageSize) 96) (eq $job.weights "imagenet") -}}
{{ .Values.cluster.image }}
{{- else -}}
{{ .Values.cluster.tfImage | default (printf "%s-tf" .Values.cluster.image) }}
{{- end -}}
{{- end -}}

{{/* Driver and executor pod settings shared by both. */}}
{{- define "fruits.pod" -}}
labels:
  {{- include "fruits.labels" . | nindent 2 }}
podSecurityContext:
  runAsNonRoot: true
  runAsUser: 185
  runAsGroup: 185
  fsGroup: 185
  seccompProfile:
    type: RuntimeDefault
securityContext:
  runAsNonRoot: true
  runAsUser: 185
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop:
      - ALL
  seccompProfile:
    type: RuntimeDefault
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: spark-local-dir-1
    mountPath: /var/data/spark-local-dir-1
{{- with .Values.cluster.s3Secret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end -}}

{{/* A role's placement (the CLI's fruits.cluster.spark_application.placement): node selector,
tolerations from TAINT_KEY: "VALUE:EFFECT", a preferred node affinity from KEY: "V1,V2",
annotations, env, priority class; only those given. Called with (list $ "driver"). */}}
{{- define "fruits.placement" -}}
{{- $c := (index . 0).Values.cluster -}}
{{- $role := index . 1 -}}
{{- with index $c (printf "%sNodeSelector" $role) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with index $c (printf "%sTolerations" $role) }}
tolerations:
  {{- range $key, $spec := . }}
  {{- $value := regexReplaceAll ":.*$" (toString $spec) "" }}
  {{- $effect := ternary (regexReplaceAll "^[^:]*:" (toString $spec) "") "" (contains ":" (toString $spec)) }}
  - key: {{ $key | quote }}
    operator: {{ ternary "Equal" "Exists" (ne $value "") }}
    {{- if $value }}
    value: {{ $value | quote }}
    {{- end }}
    {{- if $effect }}
    effect: {{ $effect }}
    {{- end }}
  {{- end }}
{{- end }}
{{- with index $c (printf "%sPreferredNodes" $role) }}
affinity:
  nodeAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        preference:
          matchExpressions:
            {{- range $key, $values := . }}
            - key: {{ $key | quote }}
              operator: In
              values:
                {{- range splitList "," (toString $values) }}
                - {{ . | quote }}
                {{- end }}
            {{- end }}
{{- end }}
{{- with index $c (printf "%sAnnotations" $role) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with index $c (printf "%sEnv" $role) }}
env:
  {{- range $name, $value := . }}
  - name: {{ $name | quote }}
    value: {{ toString $value | quote }}
  {{- end }}
{{- end }}
{{- with index $c (printf "%sPriorityClass" $role) }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* The SparkApplication spec (also the template of a ScheduledSparkApplication). */}}
{{- define "fruits.sparkSpec" -}}
type: Python
pythonVersion: "3"
mode: cluster
image: {{ include "fruits.image" . }}
imagePullPolicy: {{ .Values.cluster.imagePullPolicy }}
mainApplicationFile: local:///opt/fruits/job/main.py
arguments:
  {{- include "fruits.arguments" . | nindent 2 }}
sparkVersion: {{ .Values.sparkVersion | quote }}
sparkConf:
  {{- $conf := deepCopy .Values.cluster.sparkConf }}
  {{- with .Values.cluster.eventLogDir }}
  {{- $_ := set $conf "spark.eventLog.enabled" "true" }}
  {{- $_ := set $conf "spark.eventLog.dir" . }}
  {{- $_ := set $conf "spark.eventLog.rolling.enabled" "true" }}
  {{- $_ := set $conf "spark.eventLog.rolling.maxFileSize" $.Values.cluster.eventLogMaxFileSize }}
  {{- end }}
  {{- if .Values.cluster.prometheusMetrics }}
  {{- $_ := set $conf "spark.ui.prometheus.enabled" "true" }}
  {{- $_ := set $conf "spark.metrics.conf.*.sink.prometheusServlet.class" "org.apache.spark.metrics.sink.PrometheusServlet" }}
  {{- $_ := set $conf "spark.metrics.conf.*.sink.prometheusServlet.path" "/metrics/prometheus/" }}
  {{- $_ := set $conf "spark.metrics.appStatusSource.enabled" "true" }}
  {{- end }}
  {{- range $key, $value := $conf }}
  {{ $key }}: {{ toString $value | quote }}
  {{- end }}
restartPolicy:
  type: OnFailure
  onFailureRetries: {{ .Values.cluster.retries }}
  onFailureRetryInterval: {{ .Values.cluster.retryInterval }}
  onSubmissionFailureRetries: {{ .Values.cluster.retries }}
  onSubmissionFailureRetryInterval: {{ .Values.cluster.retryInterval }}
volumes:  # the only writable places: the root filesystem is read-only
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.cluster.tmpSize }}
  - name: spark-local-dir-1  # Spark's local directory (spills, shuffle)
    emptyDir:
      sizeLimit: {{ .Values.cluster.localDirSize }}
driver:
  cores: {{ .Values.cluster.driverCores }}
  coreLimit: {{ .Values.cluster.driverCores | quote }}
  memory: {{ .Values.cluster.driverMemory | quote }}
  memoryOverhead: {{ .Values.cluster.driverMemoryOverhead | quote }}
  serviceAccount: {{ .Values.cluster.serviceAccount }}
  {{- include "fruits.pod" . | nindent 2 }}
  {{- include "fruits.placement" (list . "driver") | nindent 2 }}
  {{- with .Values.podTemplates.driver }}
  template:
    {{- toYaml . | nindent 4 }}
  {{- end }}
executor:
  instances: {{ .Values.cluster.executors }}
  cores: {{ .Values.cluster.executorCores }}
  coreLimit: {{ .Values.cluster.executorCores | quote }}
  memory: {{ .Values.cluster.executorMemory | quote }}
  memoryOverhead: {{ .Values.cluster.executorMemoryOverhead | quote }}
  serviceAccount: {{ .Values.cluster.executorServiceAccount }}
  {{- include "fruits.pod" . | nindent 2 }}
  {{- include "fruits.placement" (list . "executor") | nindent 2 }}
  {{- with .Values.cluster.executorGraceSeconds }}
  terminationGracePeriodSeconds: {{ . }}
  {{- end }}
  {{- with .Values.podTemplates.executor }}
  template:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if .Values.cluster.dynamicAllocation }}
dynamicAllocation:
  enabled: true
  {{- if not (kindIs "invalid" .Values.cluster.initialExecutors) }}
  initialExecutors: {{ .Values.cluster.initialExecutors }}
  {{- end }}
  {{- if not (kindIs "invalid" .Values.cluster.minExecutors) }}
  minExecutors: {{ .Values.cluster.minExecutors }}
  {{- end }}
  {{- if not (kindIs "invalid" .Values.cluster.maxExecutors) }}
  maxExecutors: {{ .Values.cluster.maxExecutors }}
  {{- end }}
  shuffleTrackingEnabled: true
{{- end }}
{{- with .Values.cluster.batchScheduler }}
batchScheduler: {{ . }}
{{- if or $.Values.cluster.batchQueue $.Values.cluster.batchPriorityClass }}
batchSchedulerOptions:
  {{- with $.Values.cluster.batchQueue }}
  queue: {{ . | quote }}
  {{- end }}
  {{- with $.Values.cluster.batchPriorityClass }}
  priorityClassName: {{ . }}
  {{- end }}
{{- end }}
{{- end }}
{{- with .Values.cluster.ttlSeconds }}
timeToLiveSeconds: {{ . }}
{{- end }}
{{- end -}}
