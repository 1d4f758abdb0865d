{{/* The chart's name, or nameOverride. */}}
{{- define "xero-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: fullnameOverride, or the release name when it already contains the
chart's name, else "<release>-<chart>". 63 characters at most (the DNS label limit).
*/}}
{{- define "xero-operator.fullname" -}}
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

{{/* "<chart>-<version>", the helm.sh/chart label. */}}
{{- define "xero-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels selecting the operator's pods; never change them in an upgrade. */}}
{{- define "xero-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xero-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object of the chart. */}}
{{- define "xero-operator.labels" -}}
helm.sh/chart: {{ include "xero-operator.chart" . }}
{{ include "xero-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: xero-operator
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "xero-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "xero-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository@digest, or repository:tag (the appVersion by default). */}}
{{- define "xero-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs for XeroDatasets, and nothing else:
- XeroDatasets: read and watch (never create, change or delete);
- their status: the server-side apply patch of the status step (it answers with the object, so
  no get is needed);
- events.k8s.io Events: the recorder creates events and patches their series.
*/}}
{{- define "xero-operator.datasetRules" -}}
- apiGroups: ["xero-operator.dev"]
  resources: ["xerodatasets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["xero-operator.dev"]
  resources: ["xerodatasets/status"]
  verbs: ["patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
The rules for the credentials, granted only in the namespaces that opted in: read and watch
(metadata) the referenced Secrets; patch only to store the rotated Xero refresh token (no
create, no delete).
*/}}
{{- define "xero-operator.secretRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}

{{/*
Every rule, for a namespace the operator watches.
*/}}
{{- define "xero-operator.rules" -}}
{{ include "xero-operator.datasetRules" . }}
{{ include "xero-operator.secretRules" . }}
{{- end }}
