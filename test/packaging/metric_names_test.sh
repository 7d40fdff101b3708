#!/usr/bin/env bash
# Every metric and label the dashboards and alert rules use is one that interface.md defines, and
# every dashboard query is valid PromQL (promtool parses them as recording rules).
# usage: metric_names_test.sh SOURCE_DIR INTERFACE_MD
set -euo pipefail
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR
src=${1:?usage: metric_names_test.sh SOURCE_DIR INTERFACE_MD}
interface=${2:?usage: metric_names_test.sh SOURCE_DIR INTERFACE_MD}
[[ -r $interface ]] || { echo "FAIL: cannot read the interface spec $interface" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# The contract: metric names, histograms (which also have _bucket/_sum/_count series) and labels.
metrics_section() { sed -n '/^## Metrics/,/^## The demo/p' "$interface"; }
metrics_section | grep -o '`devscope_[a-z0-9_]*`' | tr -d '`' | sort -u >"$tmp/metrics"
metrics_section | grep '| histogram |' | grep -o '`devscope_[a-z0-9_]*`' | tr -d '`' >"$tmp/histograms"
[[ $(wc -l <"$tmp/metrics") -gt 30 ]] || { echo "FAIL: found too few metrics in $interface" >&2; exit 1; }
# Labels: every word on a metric's table row after its name, and the "Label names" paragraph, plus
# what Prometheus adds (job, instance, le for buckets; cluster where one Prometheus serves several
# clusters, which interface.md names too).
{
  metrics_section | grep '^| `devscope_' | sed 's/`devscope_[a-z0-9_]*`//g' | grep -o '[a-z_][a-z0-9_]*'
  metrics_section | grep '^Label names' | grep -o '`[a-z_]*`' | tr -d '`'
  printf '%s\n' job instance le __name__ cluster
} | sort -u >"$tmp/labels"

# What the dashboards and rules use: every query expression.
for d in "$src"/dashboards/*.json; do
  jq -e . "$d" >/dev/null || { fail "$d is not valid JSON"; continue; }
  jq -r '[.. | objects | (.expr?, .definition?, (.query? | strings))] | .[] | select(. != null and . != "")' "$d" |
    sed "s|^|$(basename "$d"): |"
done >"$tmp/exprs"
yq -r '.groups[].rules[].expr' "$src/dashboards/alerts/devscope.rules.yaml" | sed 's|^|devscope.rules.yaml: |' >>"$tmp/exprs"
[[ $(wc -l <"$tmp/exprs") -gt 40 ]] || fail "found only $(wc -l <"$tmp/exprs") expressions"

while IFS= read -r line; do
  where=${line%%: *}
  expr=${line#*: }
  for m in $(grep -o 'devscope_[a-z0-9_]*' <<<"$expr" | sort -u); do
    grep -qx "$m" "$tmp/metrics" && continue
    base=$(sed -E 's/_(bucket|sum|count)$//' <<<"$m")
    grep -qx "$base" "$tmp/histograms" && continue
    fail "$where uses $m, which interface.md does not define: $expr"
  done
  # Label names in matchers ({name="..."}, {name=~"..."}) and in by/without/on/ignoring clauses,
  # and in label_values(metric, name).
  labels=$( { grep -oE '[a-z_][a-z0-9_]*[!=]~?"' <<<"$expr" | grep -oE '^[a-z_][a-z0-9_]*' || true
    grep -oE '(by|without|on|ignoring) *\([^)]*\)' <<<"$expr" | sed -E 's/^[a-z]+ *\(//; s/\)$//' | tr ',' '\n' | tr -d ' ' || true
    grep -oE 'label_values\([^)]*\)' <<<"$expr" | sed -E 's/.*, *([a-z_]+)\)$/\1/' || true; } | sort -u)
  for l in $labels; do
    grep -qx "$l" "$tmp/labels" || fail "$where uses label '$l', which no interface.md metric has: $expr"
  done
done <"$tmp/exprs"

# Every dashboard query parses: as recording rules, with Grafana's variables given values.
{
  echo "groups:"
  echo "  - name: dashboards"
  echo "    rules:"
  i=0
  while IFS= read -r line; do
    expr=${line#*: }
    [[ $expr == label_values* ]] && continue
    expr=$(sed 's/\$__rate_interval/5m/g; s/\$[a-z_]*/.*/g' <<<"$expr")
    i=$((i + 1))
    printf '      - record: devscope:dashboard_query_%d\n        expr: %s\n' "$i" "$(jq -Rn --arg e "$expr" '$e')"
  done <"$tmp/exprs"
} >"$tmp/queries.rules.yaml"
promtool check rules "$tmp/queries.rules.yaml" >"$tmp/promtool.out" 2>&1 ||
  fail "a dashboard or rule query does not parse: $(cat "$tmp/promtool.out")"

# Dashboards: a datasource variable, and node/namespace/pod/resource variables where holders show.
for d in "$src"/dashboards/*.json; do
  vars=$(jq -r '.templating.list[].name' "$d" | sort | tr '\n' ' ')
  [[ $vars == *datasource* ]] || fail "$(basename "$d") has no datasource variable"
  [[ $(jq -r '.uid' "$d") =~ ^[a-z0-9-]{1,40}$ ]] || fail "$(basename "$d") has no short uid"
  # Every panel reads from the datasource variable, never a hard-coded data source.
  jq -r '.. | objects | select(has("datasource")) | .datasource | objects | .uid' "$d" | sort -u |
    grep -vxF -e '${datasource}' -e '-- Grafana --' | grep . && fail "$(basename "$d") hard-codes a data source"
  true
done
vars=$(jq -r '.templating.list[].name' "$src/dashboards/devscope-devices.json" | sort | tr '\n' ' ')
[[ $vars == 'cluster datasource job namespace node pod resource ' ]] || fail "devscope-devices.json variables are '$vars'"

if [[ $failures -gt 0 ]]; then echo "$failures check(s) failed" >&2; exit 1; fi
echo "ok: $(wc -l <"$tmp/exprs") expressions use only interface.md's metrics and labels, and parse"
