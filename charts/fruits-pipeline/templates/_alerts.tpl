{{/*
The alert rules on the run metrics the job pushes (job.metricsUrl): the PrometheusRule's spec,
and, rendered with metrics.alerts.jobs ".+", deploy/prometheus/fruits-alerts.yaml for a
Prometheus without the operator (make alert-rules). Annotations are Prometheus templates.
*/}}
{{- define "fruits.alertRules" -}}
{{- $alerts := .Values.metrics.alerts -}}
{{- $of := printf "{job=~%q}" (default (include "fruits.fullname" .) $alerts.jobs) -}}
groups:
  - name: fruits-pipeline
    rules:
      - alert: FruitsRunFailed
        expr: fruits_run_failure{{ $of }} * on (job, output) group_left (run_id) fruits_run_info{{ $of }}
        labels:
          severity: critical
        annotations:
          summary: {{ `The last run of {{ $labels.job }} ({{ $labels.run_id }}) failed: {{ $labels.reason }}` | quote }}
          description: {{ `Run fruitsctl logs {{ $labels.run_id }} to read why (the log kept under the output's _logs/ once the pod is gone); user_error: fix the input or the options as the log's last line says, storage: check the S3 endpoint and its permissions, infrastructure: check the pods with fruitsctl events {{ $labels.run_id }}.` | quote }}
      - alert: FruitsNoRecentSuccess
        expr: time() - max by (job, output) (fruits_run_last_success_timestamp_seconds{{ $of }}) > {{ $alerts.noSuccessHours }} * 3600
        labels:
          severity: critical
        annotations:
          summary: {{ printf "No run of {{ $labels.job }} has succeeded for more than %v hours" $alerts.noSuccessHours | quote }}
          description: {{ `The last run that finished under {{ $labels.output }} ended {{ $value | humanizeDuration }} ago: check that the schedule still runs (fruitsctl list shows its runs) and read the latest run's log (fruitsctl logs NAME).` | quote }}
      - alert: FruitsErrorRowsHigh
        expr: fruits_images_failed{{ $of }} / clamp_min(fruits_images_read{{ $of }}, 1) > {{ $alerts.errorRowsRatio }}
        labels:
          severity: warning
        annotations:
          summary: {{ `{{ $value | humanizePercentage }} of the images of the last run of {{ $labels.job }} became error rows` | quote }}
          description: {{ `The run finished, but its errors/ folder holds more rows than usual: fruitsctl report on its output shows the reasons (corrupt uploads, a new file type).` | quote }}
      - alert: FruitsRunSlow
        expr: fruits_run_duration_seconds{{ $of }} > {{ $alerts.slowFactor }} * quantile_over_time(0.5, fruits_run_duration_seconds{{ $of }}[7d])
        labels:
          severity: warning
        annotations:
          summary: {{ printf "The last run of {{ $labels.job }} took more than %v times its median of the last 7 days" $alerts.slowFactor | quote }}
          description: {{ `It took {{ $value | humanizeDuration }}: compare its stage times (fruitsctl status NAME, the manifest's timings_s) with an earlier run; lost executors, throttled S3 (storage_read_retries) or many more images are the usual causes.` | quote }}
{{- end -}}
