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
{{- with .pair }}
dbsync.io/pair: {{ . }}
{{- end }}
{{- end }}

{{/* The workspace pair's name: `pairs[].name`, or the release's full name (one release per pair). It is the pod's
dbsync.io/pair label and the `pair` label of its metrics. */}}
{{- define "dbsync.pairName" -}}
{{- .pair | default (include "dbsync.fullname" .) }}
{{- end }}

{{/* One rendering context per workspace pair, in .holder.contexts: the release itself without `pairs`; with
`pairs`, per pair the values with its config merged over the top-level config, its own tokens, names suffixed by
the pair's name and the release's service account. Per-pair templates range over them. */}}
{{- define "dbsync.contexts" -}}
{{- $root := .root }}
{{- $contexts := list }}
{{- if not $root.Values.pairs }}
{{- $contexts = append $contexts $root }}
{{- end }}
{{- $base := include "dbsync.fullname" $root }}
{{- $account := include "dbsync.serviceAccountName" $root }}
{{- range $pair := $root.Values.pairs }}
{{- $values := deepCopy $root.Values }}
{{- $_ := set $values "pairs" list }}
{{- $_ := set $values "config" (mergeOverwrite (deepCopy $root.Values.config) (deepCopy $pair.config)) }}
{{- $tokens := dict "existingSecret" "" "source" "" "target" "" "serverAuth" "" "keys" (deepCopy $root.Values.tokens.keys) }}
{{- $_ := set $values "tokens" (mergeOverwrite $tokens (deepCopy $pair.tokens)) }}
{{- $_ := set $values "fullnameOverride" (printf "%s-%s" $base $pair.name | trunc 63 | trimSuffix "-") }}
{{- $_ := set $values "serviceAccount" (merge (dict "name" $account) $values.serviceAccount) }}
{{- $_ := set $values.serviceAccount "name" $account }}
{{- $contexts = append $contexts (dict "Values" $values "Release" $root.Release "Chart" $root.Chart "Template" $root.Template "Capabilities" $root.Capabilities "Files" $root.Files "pair" $pair.name) }}
{{- end }}
{{- $_ := set .holder "contexts" $contexts }}
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

