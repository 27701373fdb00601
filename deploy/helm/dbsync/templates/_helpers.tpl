{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "dbsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "dbsync.fullname" -}}
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

{{- define "dbsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dbsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dbsync.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dbsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dbsync
{{- end }}

{{- define "dbsync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "dbsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dbsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the tokens: the chart's own, or tokens.existingSecret. */}}
{{- define "dbsync.secretName" -}}
{{- default (printf "%s-tokens" (include "dbsync.fullname" .)) .Values.tokens.existingSecret }}
{{- end }}

{{/* Where the ConfigMap's dbsync.yaml is mounted; every dbsync command in the pod takes it with --config. */}}
{{- define "dbsync.configPath" -}}
/etc/dbsync/dbsync.yaml
{{- end }}

{{/* dbsync.yaml: the user's settings plus what the chart owns (the store on the PVC, the server address). */}}
{{- define "dbsync.configYaml" -}}
{{- $config := deepCopy .Values.config }}
{{- $_ := set $config "state_path" "/var/lib/dbsync/dbsync.db" }}
{{- $_ := set $config "server" (dict "host" "0.0.0.0" "port" (int .Values.service.port)) }}
{{- toYaml $config }}
{{- end }}

