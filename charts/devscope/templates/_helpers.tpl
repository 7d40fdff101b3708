{{/* Names and labels shared by every object of the chart. */}}
{{- define "devscope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "devscope.fullname" -}}
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

{{- define "devscope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "devscope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "devscope.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "devscope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: node-agent
{{- end }}

{{- define "devscope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "devscope.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* --collector.NAME / --no-collector.NAME; auto passes nothing. */}}
{{- define "devscope.collectorFlag" -}}
{{- $v := toString .value -}}
{{- if eq $v "true" }}
- --collector.{{ .name }}
{{- else if eq $v "false" }}
- --no-collector.{{ .name }}
{{- end }}
{{- end }}

{{- define "devscope.pluginsRegistryDir" -}}
{{- $dp := default dict .Values.config.device_plugin -}}
{{- default "" $dp.plugins_registry_dir -}}
{{- end }}
