{{/* The release notes, a named template so that the chart tests can render them and run every loraflow command they print. */}}
{{- define "loraflow.notes" -}}
loraflow {{ .Chart.AppVersion }} is installed as release "{{ .Release.Name }}" in namespace "{{ .Release.Namespace }}".

Workers poll Temporal at {{ .Values.temporal.address }} (namespace "{{ .Values.temporal.namespace }}"):
  - {{ include "loraflow.fullname" . }}-worker  task queue "{{ .Values.temporal.taskQueue }}"{{ if .Values.worker.autoscaling.enabled }} ({{ .Values.worker.autoscaling.minReplicas }}-{{ .Values.worker.autoscaling.maxReplicas }} replicas, autoscaled){{ else }} ({{ .Values.worker.replicas }} replicas){{ end }}
{{- if .Values.gpuWorkers.enabled }}
  - {{ include "loraflow.fullname" . }}-gpu-worker  task queue "{{ .Values.gpuWorkers.taskQueue }}", training only, {{ .Values.gpuWorkers.gpus }} x {{ .Values.gpuWorkers.gpuResourceName }} per pod
{{- end }}
{{- if .Values.argo.enabled }}
Training is handed to Argo Workflows in namespace "{{ include "loraflow.argoNamespace" . }}" (image {{ default (include "loraflow.image" .) .Values.argo.trainerImage }}).
{{- end }}

1. Check that the workers reach Temporal:
     helm test {{ .Release.Name }} -n {{ .Release.Namespace }}
     kubectl -n {{ .Release.Namespace }} get pods -l app.kubernetes.io/instance={{ .Release.Name }}

2. The attestation signing key comes from Secret "{{ .Values.signing.existingSecret }}" (key "{{ .Values.signing.privateKeyKey }}"). If it does not exist yet:
     kubectl -n {{ .Release.Namespace }} create secret generic {{ .Values.signing.existingSecret }} \
       --from-file={{ .Values.signing.privateKeyKey }}=cosign.key{{ if .Values.signing.publicKeyKey }} --from-file={{ .Values.signing.publicKeyKey }}=cosign.pub{{ end }}

3. Start a fine-tuning run against this cluster (from any machine that reaches Temporal), and list the runs:
     loraflow run spec.yaml --address {{ .Values.temporal.address }} --namespace {{ .Values.temporal.namespace }}
     loraflow runs ls --address {{ .Values.temporal.address }} --namespace {{ .Values.temporal.namespace }}
   Artifacts are written under {{ .Values.artifacts.mountPath }} on claim "{{ include "loraflow.claimName" . }}".
{{- if .Values.schedule.enabled }}

4. Retraining schedule "{{ .Values.schedule.id }}" ({{ .Values.schedule.cron }}) is created or updated by the Job {{ include "loraflow.fullname" . }}-schedule:
     loraflow schedule describe {{ .Values.schedule.id }} --address {{ .Values.temporal.address }} --namespace {{ .Values.temporal.namespace }}
{{- end }}

Metrics: port {{ .Values.metrics.port }}, path /metrics{{ if .Values.metrics.serviceMonitor.enabled }} (scraped through ServiceMonitor {{ include "loraflow.fullname" . }}){{ end }}.
{{- if and (not .Values.artifacts.existingClaim) (not (has "ReadWriteMany" .Values.artifacts.persistence.accessModes)) }}

WARNING: the artifact claim is not ReadWriteMany; only one worker pod can mount it on most storage.
{{- end }}
{{- end }}
