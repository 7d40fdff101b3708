#!/usr/bin/env bash
# The alert rules: promtool checks their syntax and runs dashboards/alerts/devscope.rules.test.yaml,
# which feeds series and asserts which alerts fire (with labels and text) and which stay silent.
# usage: alert_rules_test.sh SOURCE_DIR
set -euo pipefail
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR
src=${1:?usage: alert_rules_test.sh SOURCE_DIR}
command -v promtool >/dev/null || { echo "FAIL: promtool not found (Debian package prometheus)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# promtool resolves rule_files relative to the test file; a copy keeps the source tree untouched.
cp "$src"/dashboards/alerts/devscope.rules.yaml "$src"/dashboards/alerts/devscope.rules.test.yaml "$tmp"/
promtool check rules "$tmp/devscope.rules.yaml" || { echo "FAIL: promtool check rules" >&2; exit 1; }
promtool test rules "$tmp/devscope.rules.test.yaml" || { echo "FAIL: promtool test rules" >&2; exit 1; }
# Every alert in the rules has at least one test that expects it to fire.
missing=0
while read -r alert; do
  grep -q "alertname: $alert\$" "$tmp/devscope.rules.test.yaml" || { echo "FAIL: no test for alert $alert" >&2; missing=1; }
done < <(sed -n 's/^ *- alert: *//p' "$tmp/devscope.rules.yaml")
exit $missing
