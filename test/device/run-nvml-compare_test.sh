#!/usr/bin/env bash
# run-nvml-compare.sh on saved reports (testdata/: an H100's nvidia-smi -q, nvlink -e and -gt d,
# and a devscope scrape that agrees with them, written for this test): it reads every value it
# compares, says ok where they agree, and flags a wrong fixed value, a missing series, a counter
# behind nvidia-smi and another driver version, while a live value a little off only differs.
# usage: run-nvml-compare_test.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: run-nvml-compare_test.sh SOURCE_DIR}
data=$src/test/device/testdata
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# Runs the comparison on the scrape `metrics`; sets out and status.
compare() {
  status=0
  out=$(NVIDIA_SMI=$data/fake-nvidia-smi bash "$src/test/device/run-nvml-compare.sh" --metrics "$1" 2>&1) || status=$?
}
# The verdict column of a series' row.
verdict() { grep -F "  $1 " <<<"$out" | head -1 | awk '{print $NF}'; }
# A scrape with the series line matching `pattern` edited by the sed expression `edit`.
edited() { sed -E "/$1/$2" "$data/metrics.txt" >"$tmp/metrics"; echo "$tmp/metrics"; }

compare "$data/metrics.txt"
[[ $status -eq 0 ]] || fail "an agreeing scrape exits $status: $out"
grep -q '== 45 series compared on 1 GPU(s); 0 MISMATCH or MISSING' <<<"$out" ||
  fail "an agreeing scrape: $(grep '^==.*compared' <<<"$out")"
for series in 'devscope_device_clock_max_hertz{clock="sm"}' 'devscope_device_memory_reserved_bytes' \
  'devscope_device_clock_event_reason_active{reason="gpu_idle"}' 'devscope_device_pcie_replays_total' \
  'devscope_device_row_remap_failed' 'devscope_device_nvlink_receive_bytes_total{link="0"}' \
  'devscope_device_memory_temperature_celsius' 'devscope_device_power_limit_watts' \
  'devscope_device_driver_info'; do
  [[ $(verdict "$series") == ok ]] || fail "$series is not ok: $(grep -F "$series" <<<"$out" | tail -1)"
done
[[ $(verdict 'devscope_device_retired_pages{cause="single_bit_ecc"}') == absent ]] ||
  fail "retired pages, N/A on an H100 and absent from devscope, are not 'absent'"

compare "$(edited 'clock_max_hertz.*clock="sm"' 's/ [0-9]+$/ 1410000000/')"
[[ $status -eq 1 && $(verdict 'devscope_device_clock_max_hertz{clock="sm"}') == MISMATCH ]] ||
  fail "a wrong maximum clock is not a MISMATCH (exit $status)"

compare "$(edited 'memory_temperature_celsius' 'd')"
[[ $status -eq 1 && $(verdict 'devscope_device_memory_temperature_celsius') == MISSING ]] ||
  fail "a missing memory temperature is not MISSING (exit $status)"

compare "$(edited 'link="1",kind="replay"' 's/ [0-9]+$/ 5/')"
[[ $status -eq 1 && $(verdict 'devscope_device_nvlink_errors_total{link="1",kind="replay"}') == MISMATCH ]] ||
  fail "a counter ahead of nvidia-smi's later reading is not a MISMATCH (exit $status)"

compare "$(edited 'driver_info' 's/550.54.15/535.104.05/')"
[[ $status -eq 1 && $(verdict 'devscope_device_driver_info') == MISMATCH ]] ||
  fail "another driver version is not a MISMATCH (exit $status)"

compare "$(edited 'device_temperature_celsius' 's/ [0-9]+$/ 60/')"
[[ $status -eq 0 && $(grep -F '  devscope_device_temperature_celsius ' <<<"$out") == *"DIFFERS (live)" ]] ||
  fail "a live temperature 22 C off does not merely differ (exit $status)"

[[ $failures -eq 0 ]] || exit 1
echo "ok: run-nvml-compare.sh agrees, flags and tolerates as it says"
