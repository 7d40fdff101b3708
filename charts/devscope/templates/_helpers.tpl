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

{{/* The namespace of every namespaced object (namespaceOverride: for umbrella charts). */}}
{{- define "devscope.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
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

{{/* The pod's labels: podLabels first, the chart's own over them, so that no value can take the
pods out of the DaemonSet's selector (the schema also refuses the selector's keys). */}}
{{- define "devscope.podLabels" -}}
{{- $own := include "devscope.labels" . | fromYaml }}
{{- toYaml (merge $own (deepCopy .Values.podLabels)) }}
{{- end }}

{{- define "devscope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "devscope.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest pins the image. */}}
{{- define "devscope.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
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

{{/* The plugin-watcher directory, when the plugin registers that way; "" otherwise. */}}
{{- define "devscope.pluginsRegistryDir" -}}
{{- if and .Values.devicePlugin.enabled .Values.devicePlugin.pluginWatcher }}
{{- .Values.kubelet.pluginsRegistryDir }}
{{- end }}
{{- end }}

{{/* config.yaml: the config value, with what the chart's own values decide merged in. */}}
{{- define "devscope.configYaml" -}}
{{- $config := deepCopy .Values.config }}
{{- with include "devscope.pluginsRegistryDir" . }}
{{- $plugin := default dict (get $config "device_plugin") }}
{{- $_ := set $plugin "plugins_registry_dir" . }}
{{- $_ := set $config "device_plugin" $plugin }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* One scrape endpoint of the ServiceMonitor or the PodMonitor (the same fields in both). */}}
{{- define "devscope.scrapeEndpoint" -}}
{{- $m := .monitor -}}
- port: metrics
  path: {{ .root.Values.web.telemetryPath }}
  scheme: {{ .root.Values.web.scheme }}
  interval: {{ $m.interval }}
  scrapeTimeout: {{ $m.scrapeTimeout }}
  honorLabels: {{ $m.honorLabels }}
  {{- with $m.tlsConfig }}
  tlsConfig:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $m.basicAuth }}
  basicAuth:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  relabelings:
    - targetLabel: job
      replacement: {{ $m.jobLabel | quote }}
    {{- if $m.instanceFromNodeName }}
    - sourceLabels: [__meta_kubernetes_pod_node_name]
      targetLabel: instance
    {{- end }}
    {{- with $m.relabelings }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $m.metricRelabelings }}
  metricRelabelings:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
