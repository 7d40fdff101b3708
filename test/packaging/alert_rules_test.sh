#!/usr/bin/env bash
# The alert rules: promtool checks their syntax and runs dashboards/alerts/devscope.rules.test.yaml,
# which feeds series and asserts which alerts fire (with labels and text) and which stay silent;
# every alert has both kinds of test, a severity and its runbook in docs/runbooks.
# usage: alert_rules_test.sh SOURCE_DIR
set -euo pipefail
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR
src=${1:?usage: alert_rules_test.sh SOURCE_DIR}
for t in promtool yq jq; do command -v $t >/dev/null || { echo "FAIL: $t not found (Debian packages prometheus, yq, jq)" >&2; exit 1; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# promtool resolves rule_files relative to the test file; a copy keeps the source tree untouched.
cp "$src"/dashboards/alerts/devscope.rules.yaml "$src"/dashboards/alerts/devscope.rules.test.yaml "$tmp"/
promtool check rules "$tmp/devscope.rules.yaml" || { echo "FAIL: promtool check rules" >&2; exit 1; }
promtool test rules "$tmp/devscope.rules.test.yaml" || { echo "FAIL: promtool test rules" >&2; exit 1; }
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# Every alert has a test that expects it to fire and one that expects it silent; a severity
# (critical, warning, info); a runbook_url of docs/runbooks/<alert>.md, which exists and says what
# the alert means, how to confirm it and what to do.
yq -r '.tests[].alert_rule_test[] | select(.exp_alerts | length > 0) | .alertname' "$tmp/devscope.rules.test.yaml" | sort -u >"$tmp/fires"
yq -r '.tests[].alert_rule_test[] | select(.exp_alerts | length == 0) | .alertname' "$tmp/devscope.rules.test.yaml" | sort -u >"$tmp/silent"
runbooks=https://github.com/devscope/devscope/blob/main/docs/runbooks
yq -r '.groups[].rules[].alert' "$tmp/devscope.rules.yaml" >"$tmp/alerts"
while read -r alert; do
  grep -qx "$alert" "$tmp/fires" || fail "no test expects $alert to fire"
  grep -qx "$alert" "$tmp/silent" || fail "no test expects $alert to stay silent"
  rule=$(yq -c --arg a "$alert" '.groups[].rules[] | select(.alert == $a)' "$tmp/devscope.rules.yaml")
  [[ $(jq -r .labels.severity <<<"$rule") =~ ^(critical|warning|info)$ ]] || fail "$alert has no severity critical, warning or info"
  [[ $(jq -r .annotations.runbook_url <<<"$rule") == "$runbooks/$alert.md" ]] || fail "$alert's runbook_url is not $runbooks/$alert.md"
  book=$src/docs/runbooks/$alert.md
  if [[ ! -f $book ]]; then
    fail "$alert has no runbook docs/runbooks/$alert.md"
    continue
  fi
  [[ $(head -n1 "$book") == "# $alert" ]] || fail "docs/runbooks/$alert.md does not start with '# $alert'"
  for section in '## What it means' '## How to confirm' '## What to do'; do
    grep -qx "$section" "$book" || fail "docs/runbooks/$alert.md has no '$section' section"
  done
done <"$tmp/alerts"
# ... and no runbook for an alert that is gone.
for book in "$src"/docs/runbooks/*.md; do
  name=$(basename "$book" .md)
  [[ $name == README ]] || grep -qx "$name" "$tmp/alerts" || fail "docs/runbooks/$name.md is the runbook of no alert"
  [[ $name == README ]] || grep -qF "($name.md)" "$src/docs/runbooks/README.md" || fail "docs/runbooks/README.md does not link $name.md"
done
if [[ $failures -gt 0 ]]; then echo "$failures check(s) failed" >&2; exit 1; fi
echo "ok: $(wc -l <"$tmp/alerts") alerts, each tested firing and silent, each with its runbook"
