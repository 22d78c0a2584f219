{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "loraflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release full name. */}}
{{- define "loraflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "loraflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "loraflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loraflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "loraflow.labels" -}}
helm.sh/chart: {{ include "loraflow.chart" . }}
{{ include "loraflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: loraflow
{{- end }}

{{- define "loraflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "loraflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "loraflow.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "loraflow.claimName" -}}
{{- default (printf "%s-artifacts" (include "loraflow.fullname" .)) .Values.artifacts.existingClaim }}
{{- end }}

{{- define "loraflow.argoNamespace" -}}
{{- default .Release.Namespace .Values.argo.namespace }}
{{- end }}

{{- define "loraflow.trainTaskQueue" -}}
{{- if .Values.gpuWorkers.enabled }}{{ .Values.gpuWorkers.taskQueue }}{{ else }}{{ .Values.temporal.taskQueue }}{{ end }}
{{- end }}

{{- define "loraflow.registryURI" -}}
{{- default (printf "file://%s/registry" .Values.artifacts.mountPath) .Values.registry.uri }}
{{- end }}

{{/* Comma-separated paths of the trusted public keys. */}}
{{- define "loraflow.trustedKeys" -}}
{{- $paths := list }}
{{- if .Values.signing.publicKeyKey }}
{{- $paths = append $paths (printf "/etc/loraflow/signing/%s" .Values.signing.publicKeyKey) }}
{{- end }}
{{- if .Values.signing.trustedKeys.existingSecret }}
{{- range .Values.signing.trustedKeys.keys }}
{{- $paths = append $paths (printf "/etc/loraflow/trusted-keys/%s" .) }}
{{- end }}
{{- end }}
{{- join "," $paths }}
{{- end }}

{{/* Pod-level security context; the hardening fields are fixed. */}}
{{- define "loraflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
fsGroup: {{ .Values.podSecurityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security context; fixed. */}}
{{- define "loraflow.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Environment shared by every loraflow container: the ConfigMap, the registry Secret. */}}
{{- define "loraflow.envFrom" -}}
- configMapRef:
    name: {{ include "loraflow.fullname" . }}
{{- if .Values.registry.existingSecret }}
- secretRef:
    name: {{ .Values.registry.existingSecret }}
{{- end }}
{{- end }}

{{/* Volumes for the Temporal client (TLS) and /tmp. */}}
{{- define "loraflow.clientVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "loraflow.clientVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  mountPath: /etc/loraflow/temporal-tls
  readOnly: true
{{- end }}
{{- end }}

{{/* Volumes of a worker pod: the client ones, the artifact store, the keys. */}}
{{- define "loraflow.workerVolumes" -}}
{{ include "loraflow.clientVolumes" . }}
- name: artifacts
  persistentVolumeClaim:
    claimName: {{ include "loraflow.claimName" . }}
- name: signing
  secret:
    secretName: {{ .Values.signing.existingSecret }}
    defaultMode: 0440
{{- if .Values.signing.trustedKeys.existingSecret }}
- name: trusted-keys
  secret:
    secretName: {{ .Values.signing.trustedKeys.existingSecret }}
    defaultMode: 0444
{{- end }}
{{- range $i, $r := .Values.trust.inputRoots }}
- name: input-root-{{ $i }}
  persistentVolumeClaim:
    claimName: {{ $r.existingClaim }}
    readOnly: true
{{- end }}
{{- range $i, $n := keys .Values.trust.signingKeys | sortAlpha }}
- name: signing-key-{{ $i }}
  secret:
    secretName: {{ (index $.Values.trust.signingKeys $n).existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "loraflow.workerVolumeMounts" -}}
{{ include "loraflow.clientVolumeMounts" . }}
- name: artifacts
  mountPath: {{ .Values.artifacts.mountPath }}
- name: signing
  mountPath: /etc/loraflow/signing
  readOnly: true
{{- if .Values.signing.trustedKeys.existingSecret }}
- name: trusted-keys
  mountPath: /etc/loraflow/trusted-keys
  readOnly: true
{{- end }}
{{- range $i, $r := .Values.trust.inputRoots }}
- name: input-root-{{ $i }}
  mountPath: {{ $r.mountPath }}
  readOnly: true
{{- end }}
{{- range $i, $n := keys .Values.trust.signingKeys | sortAlpha }}
- name: signing-key-{{ $i }}
  mountPath: /etc/loraflow/signing-keys/{{ $i }}
  readOnly: true
{{- end }}
{{- end }}

{{/* LORAFLOW_INPUT_ROOTS: the trust.inputRoots mount paths, comma-separated. */}}
{{- define "loraflow.inputRoots" -}}
{{- $paths := list }}
{{- range .Values.trust.inputRoots }}
{{- $paths = append $paths .mountPath }}
{{- end }}
{{- join "," $paths }}
{{- end }}

{{/* LORAFLOW_ARGO_INPUT_CLAIMS: CLAIM=MOUNTPATH,... of trust.inputRoots, mounted read-only in the trainer pods too. */}}
{{- define "loraflow.argoInputClaims" -}}
{{- $pairs := list }}
{{- range .Values.trust.inputRoots }}
{{- $pairs = append $pairs (printf "%s=%s" .existingClaim .mountPath) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* LORAFLOW_REGISTRIES: NAME=URI,... (sorted by name). */}}
{{- define "loraflow.registries" -}}
{{- $pairs := list }}
{{- range $n := keys .Values.trust.registries | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $n (index $.Values.trust.registries $n)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* LORAFLOW_SIGNING_KEYS: NAME=PEM path,... on the signing-key-N mounts. */}}
{{- define "loraflow.signingKeys" -}}
{{- $pairs := list }}
{{- range $i, $n := keys .Values.trust.signingKeys | sortAlpha }}
{{- $k := index $.Values.trust.signingKeys $n }}
{{- $pairs = append $pairs (printf "%s=/etc/loraflow/signing-keys/%d/%s" $n $i (default "signing.key" $k.key)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
One worker Deployment. Called with a dict:
  root  - the top-level context
  group - "worker" or "gpu-worker" (component label, name suffix)
  cfg   - .Values.worker or .Values.gpuWorkers
  gpu   - true for the GPU group
*/}}
{{- define "loraflow.workerDeployment" -}}
{{- $root := .root }}
{{- $cfg := .cfg }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "loraflow.fullname" $root }}-{{ .group }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "loraflow.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .group }}
spec:
  {{- if not $cfg.autoscaling.enabled }}
  replicas: {{ $cfg.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "loraflow.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ .group }}
  template:
    metadata:
      labels:
        {{- include "loraflow.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .group }}
        loraflow.dev/metrics: "true"
        {{- with $cfg.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- with $cfg.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "loraflow.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.argo.enabled }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $cfg.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $cfg.terminationGracePeriodSeconds }}
      securityContext:
        {{- include "loraflow.podSecurityContext" $root | nindent 8 }}
      containers:
        - name: worker
          image: {{ include "loraflow.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - loraflow-worker
          {{- with $cfg.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          envFrom:
            {{- include "loraflow.envFrom" $root | nindent 12 }}
          {{- if or .gpu $cfg.extraEnv $root.Values.signing.passwordKey }}
          env:
            {{- if .gpu }}
            - name: LORAFLOW_WORKER_ROLE
              value: train
            {{- end }}
            {{- with $root.Values.signing.passwordKey }}
            - name: COSIGN_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $root.Values.signing.existingSecret }}
                  key: {{ . }}
            {{- end }}
            {{- with $cfg.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
          ports:
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
          {{- with $root.Values.probes.readiness }}
          {{- if .enabled }}
          readinessProbe:
            exec:
              command:
                - loraflow-worker
                - check
            initialDelaySeconds: {{ .initialDelaySeconds }}
            periodSeconds: {{ .periodSeconds }}
            timeoutSeconds: {{ .timeoutSeconds }}
            failureThreshold: {{ .failureThreshold }}
          {{- end }}
          {{- end }}
          {{- with $root.Values.probes.liveness }}
          {{- if .enabled }}
          livenessProbe:
            httpGet:
              path: /metrics
              port: metrics
            initialDelaySeconds: {{ .initialDelaySeconds }}
            periodSeconds: {{ .periodSeconds }}
            timeoutSeconds: {{ .timeoutSeconds }}
            failureThreshold: {{ .failureThreshold }}
          {{- end }}
          {{- end }}
          resources:
            {{- $res := deepCopy $cfg.resources }}
            {{- if .gpu }}
            {{- $limits := default dict $res.limits }}
            {{- $_ := set $limits $cfg.gpuResourceName $cfg.gpus }}
            {{- $_ := set $res "limits" $limits }}
            {{- end }}
            {{- toYaml $res | nindent 12 }}
          securityContext:
            {{- include "loraflow.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "loraflow.workerVolumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "loraflow.workerVolumes" $root | nindent 8 }}
      {{- with $cfg.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $cfg.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $cfg.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $cfg.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/* One HorizontalPodAutoscaler; same dict as loraflow.workerDeployment. */}}
{{- define "loraflow.workerHPA" -}}
{{- $root := .root }}
{{- $as := .cfg.autoscaling }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "loraflow.fullname" $root }}-{{ .group }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "loraflow.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .group }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "loraflow.fullname" $root }}-{{ .group }}
  minReplicas: {{ $as.minReplicas }}
  maxReplicas: {{ $as.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $as.targetCPUUtilizationPercentage }}
    {{- if $as.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ $as.targetMemoryUtilizationPercentage }}
    {{- end }}
{{- end }}

{{/* One KEDA ScaledObject on the group's task queue backlog; same dict as
loraflow.workerDeployment. The main group polls workflow and activity tasks,
the GPU group activity tasks (TrainLoRA) only. */}}
{{- define "loraflow.workerScaledObject" -}}
{{- $root := .root }}
{{- $as := .cfg.autoscaling }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "loraflow.fullname" $root }}-{{ .group }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "loraflow.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .group }}
spec:
  scaleTargetRef:
    name: {{ include "loraflow.fullname" $root }}-{{ .group }}
  minReplicaCount: {{ $as.minReplicas }}
  maxReplicaCount: {{ $as.maxReplicas }}
  triggers:
    - type: temporal
      metadata:
        endpoint: {{ $root.Values.temporal.address | quote }}
        namespace: {{ $root.Values.temporal.namespace | quote }}
        taskQueue: {{ ternary $root.Values.gpuWorkers.taskQueue $root.Values.temporal.taskQueue (eq .group "gpu-worker") | quote }}
        queueTypes: {{ ternary "activity" "workflow,activity" (eq .group "gpu-worker") | quote }}
        targetQueueSize: {{ $as.targetQueueSize | quote }}
        activationTargetQueueSize: "0"
{{- end }}
