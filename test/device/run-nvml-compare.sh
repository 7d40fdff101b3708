#!/usr/bin/env bash
# Compares the NVML counters devscope serves with what nvidia-smi says, GPU by GPU, and flags the
# ones that differ. For a machine with an NVIDIA GPU and driver; prints everything it compared
# (and nvidia-smi's own reports) so that a person can check the verdicts.
#
# Usage: test/device/run-nvml-compare.sh --rootfs ROOTFS | --binary DEVSCOPE | --metrics URL_OR_FILE
#   --rootfs ROOTFS      run the agent as the container image holds it (its loader and Debian 12
#                        libraries: a machine that is not Debian 12), e.g. build/device-check/
#                        bundle/rootfs as test/device/run-agent-check.sh says how to make
#   --binary DEVSCOPE    run this devscope binary
#   --metrics URL|FILE   compare what a running devscope serves (or a saved scrape)
# Environment: NVML_LIBRARY (default: found with ldconfig or in the usual places), PORT (9556),
# NVIDIA_SMI (nvidia-smi).
#
# Verdicts, per GPU and series: ok; MISMATCH (a value that does not change by itself differs:
# maximum clocks, memory total and reserve, the power limit, retired pages, remapped rows, the
# driver's versions; or a counter nvidia-smi, read after the scrape, has lower); DIFFERS (a live
# value, read a moment apart, beyond its tolerance: look at it twice before calling it wrong);
# MISSING (nvidia-smi has a value, devscope no series); EXTRA (devscope has a series, nvidia-smi
# says N/A); absent (neither has it). Exit status: 0 when nothing is MISMATCH or MISSING, 1 when
# something is, 2 on bad usage or when there is nothing to compare.
set -uo pipefail

usage() { sed -n '6,12p' "$0" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
mode=$1 arg=$2
smi=${NVIDIA_SMI:-nvidia-smi}
port=${PORT:-9556}
tmp=$(mktemp -d)
pid=""
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

find_library() {
  local library=${NVML_LIBRARY:-}
  [[ -z $library ]] && library=$(ldconfig -p 2>/dev/null | awk '/libnvidia-ml\.so\.1 / {print $NF; exit}')
  for dir in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64; do
    [[ -z $library && -e $dir/libnvidia-ml.so.1 ]] && library=$dir/libnvidia-ml.so.1
  done
  echo "${library:-libnvidia-ml.so.1}"
}

# GET over /dev/tcp: no curl needed on the device machine.
http_get() {
  local hostport=${1#http://}
  hostport=${hostport%%/*}
  local path=/${1#http://*/}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
  sed '1,/^\r\{0,1\}$/d' <&3
  exec 3<&-
}

# Starts devscope with only the nvml collector and waits for its first nvml pass.
start_agent() {
  local library
  library=$(find_library)
  echo "== libnvidia-ml: $library"
  printf 'collectors:\n  nvml:\n    library: %s\n' "$library" >"$tmp/config.yaml"
  "$@" --config.file="$tmp/config.yaml" --web.listen-address="127.0.0.1:$port" \
    --kubelet.pod-resources-socket="$tmp/absent.sock" --no-device-plugin --no-collector.drm \
    --no-collector.netdev >"$tmp/agent.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 40); do
    sleep 0.25
    http_get "http://127.0.0.1:$port/metrics" 2>/dev/null | grep -q '^devscope_device_info' && return 0
  done
  echo "devscope served no device within 10 s; its log:" >&2
  cat "$tmp/agent.log" >&2
  return 1
}

case $mode in
  --rootfs)
    root=$(cd "$arg" && pwd) || exit 2
    start_agent "$root/lib64/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu" \
      "$root/usr/bin/devscope" || exit 2
    url="http://127.0.0.1:$port/metrics" ;;
  --binary) start_agent "$arg" || exit 2; url="http://127.0.0.1:$port/metrics" ;;
  --metrics) url=$arg ;;
  *) usage ;;
esac

# The scrape first, then nvidia-smi at once: live values are read a moment apart.
if [[ $url == http://* ]]; then
  http_get "$url" >"$tmp/metrics" || { echo "cannot GET $url" >&2; exit 2; }
else
  cp "$url" "$tmp/metrics" || exit 2
fi
"$smi" -q >"$tmp/smi-q.txt" 2>&1 || { echo "$smi -q failed:" >&2; cat "$tmp/smi-q.txt" >&2; exit 2; }
"$smi" -q -d CLOCK,PERFORMANCE,ECC,PAGE_RETIREMENT,ROW_REMAPPER >"$tmp/smi-d.txt" 2>&1
"$smi" nvlink -e >"$tmp/nvlink-e.txt" 2>&1
"$smi" nvlink -gt d >"$tmp/nvlink-gt.txt" 2>&1

echo "== $smi -q -d CLOCK,PERFORMANCE,ECC,PAGE_RETIREMENT,ROW_REMAPPER"
cat "$tmp/smi-d.txt"
echo "== $smi nvlink -e; $smi nvlink -gt d"
cat "$tmp/nvlink-e.txt" "$tmp/nvlink-gt.txt"
echo "== devscope's nvml series"
grep -E '^devscope_(device_[a-z_]*|collector_[a-z_]*)\{' "$tmp/metrics" | grep -v 'collector="\(drm\|netdev\|devicedir\)"'
[[ -n $pid ]] && { echo "== devscope's log"; cat "$tmp/agent.log"; }

# nvidia-smi -q flattened to "UUID<TAB>Section/Sub/Key<TAB>value" (the GPU's UUID, or "-" before
# the first GPU); headers are the lines without " : ", nested by indentation.
awk '
  function flush(  i) { for (i = 1; i <= n; ++i) print (uuid == "" ? bus : uuid) "\t" lines[i]; n = 0 }
  /^GPU [0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+\.[0-9]/ { flush(); bus = $2; uuid = ""; depth = 0; next }
  {
    sub(/\r$/, "")
    if ($0 ~ /^[ \t]*$/ || $0 ~ /^=/) next
    match($0, /^ */); indent = RLENGTH
    while (depth > 0 && indents[depth] >= indent) --depth
    sep = index($0, " : ")
    if (sep == 0) {
      name = substr($0, indent + 1); sub(/[ \t:]+$/, "", name)
      indents[++depth] = indent; names[depth] = name
      next
    }
    key = substr($0, indent + 1, sep - indent - 1); sub(/[ \t]+$/, "", key)
    value = substr($0, sep + 3); sub(/^[ \t]+/, "", value); sub(/[ \t]+$/, "", value)
    path = ""
    for (i = 1; i <= depth; ++i) path = path names[i] "/"
    path = path key
    if (bus == "") { print "-\t" path "\t" value; next }
    if (path == "GPU UUID") uuid = value
    lines[++n] = path "\t" value
  }
  END { flush() }' "$tmp/smi-q.txt" >"$tmp/smi.flat"

# nvidia-smi nvlink -e and -gt d, as "UUID<TAB>NVLink/<link>/<what><TAB>value".
awk '
  /^GPU [0-9]+:/ { uuid = $0; sub(/.*UUID: */, "", uuid); sub(/\).*/, "", uuid); next }
  /Link [0-9]+:/ {
    line = $0; sub(/^[ \t]*Link /, "", line)
    link = line; sub(/:.*/, "", link)
    rest = line; sub(/^[0-9]+: */, "", rest)
    what = rest; sub(/:[^:]*$/, "", what)
    value = rest; sub(/.*: */, "", value)
    print uuid "\tNVLink/" link "/" what "\t" value
  }' "$tmp/nvlink-e.txt" "$tmp/nvlink-gt.txt" >>"$tmp/smi.flat"

# devscope's series as "DEVICE<TAB>name{labels but resource, device and holders}<TAB>value".
awk '
  /^#/ || !/^devscope_device_/ { next }
  {
    name = $0; sub(/[{ ].*/, "", name)
    value = $NF
    labels = ""; device = ""
    rest = $0; sub(/^[^{]*/, "", rest)
    while (match(rest, /[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"/)) {
      pair = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
      k = pair; sub(/=.*/, "", k)
      if (k == "device") { device = pair; sub(/^[^"]*"/, "", device); sub(/"$/, "", device); continue }
      if (k == "resource" || k == "namespace" || k == "pod" || k == "container") continue
      labels = labels (labels == "" ? "" : ",") pair
    }
    key = name (labels == "" ? "" : "{" labels "}")
    if (!((device, key) in seen)) { seen[device, key] = 1; print device "\t" key "\t" value }
  }' "$tmp/metrics" >"$tmp/devscope.flat"

# What to compare: devscope series; nvidia-smi path (a regular expression on the flattened path);
# how to read nvidia-smi's value; the kind of value (exact, live, counter).
cat >"$tmp/map" <<'EOF'
devscope_device_clock_hertz{clock="sm"};Clocks/SM;mhz;live
devscope_device_clock_hertz{clock="memory"};Clocks/Memory;mhz;live
devscope_device_clock_max_hertz{clock="sm"};Max Clocks/SM;mhz;exact
devscope_device_clock_max_hertz{clock="memory"};Max Clocks/Memory;mhz;exact
devscope_device_clock_event_reason_active{reason="gpu_idle"};Clocks (Event|Throttle) Reasons/Idle;active;live
devscope_device_clock_event_reason_active{reason="applications_clocks_setting"};Clocks (Event|Throttle) Reasons/Applications Clocks Setting;active;live
devscope_device_clock_event_reason_active{reason="sw_power_cap"};Clocks (Event|Throttle) Reasons/SW Power Cap;active;live
devscope_device_clock_event_reason_active{reason="hw_slowdown"};Clocks (Event|Throttle) Reasons/HW Slowdown;active;live
devscope_device_clock_event_reason_active{reason="hw_thermal_slowdown"};Clocks (Event|Throttle) Reasons/HW Thermal Slowdown;active;live
devscope_device_clock_event_reason_active{reason="hw_power_brake_slowdown"};Clocks (Event|Throttle) Reasons/HW Power Brake Slowdown;active;live
devscope_device_clock_event_reason_active{reason="sync_boost"};Clocks (Event|Throttle) Reasons/Sync Boost;active;live
devscope_device_clock_event_reason_active{reason="sw_thermal_slowdown"};Clocks (Event|Throttle) Reasons/SW Thermal Slowdown;active;live
devscope_device_clock_event_reason_active{reason="display_clock_setting"};Clocks (Event|Throttle) Reasons/Display Clock Setting;active;live
devscope_device_temperature_celsius;Temperature/GPU Current Temp;number;live
devscope_device_memory_temperature_celsius;Temperature/Memory Current Temp;number;live
devscope_device_utilization_ratio;Utilization/(Gpu|GPU);percent;live
devscope_device_memory_copy_utilization_ratio;Utilization/Memory;percent;live
devscope_device_encoder_utilization_ratio;Utilization/Encoder;percent;live
devscope_device_decoder_utilization_ratio;Utilization/Decoder;percent;live
devscope_device_memory_total_bytes;FB Memory Usage/Total;mib;exact
devscope_device_memory_reserved_bytes;FB Memory Usage/Reserved;mib;exact
devscope_device_memory_used_bytes;FB Memory Usage/Used;mib;live
devscope_device_memory_free_bytes;FB Memory Usage/Free;mib;live
devscope_device_pcie_replays_total;PCI/Replays [Ss]ince [Rr]eset;number;counter
devscope_device_pcie_transmit_bytes_per_second;PCI/Tx Throughput;kb;live
devscope_device_pcie_receive_bytes_per_second;PCI/Rx Throughput;kb;live
devscope_device_power_watts;(GPU )?Power Readings/Power Draw;number;live
devscope_device_power_limit_watts;(GPU )?Power Readings/(Current|Enforced) Power Limit;number;exact
devscope_device_retired_pages{cause="single_bit_ecc"};Retired Pages/Single Bit ECC;number;exact
devscope_device_retired_pages{cause="double_bit_ecc"};Retired Pages/Double Bit ECC;number;exact
devscope_device_retired_pages_pending;Retired Pages/Pending.*;yesno;exact
devscope_device_remapped_rows{cause="correctable"};Remapped Rows/Correctable Error;number;exact
devscope_device_remapped_rows{cause="uncorrectable"};Remapped Rows/Uncorrectable Error;number;exact
devscope_device_row_remap_pending;Remapped Rows/Pending;yesno;exact
devscope_device_row_remap_failed;Remapped Rows/Remapping Failure Occurred;yesno;exact
EOF
# NVLink, per link devscope reports: nvidia-smi nvlink -e and -gt d.
awk -F'\t' '$2 ~ /^devscope_device_nvlink_/ {
    link = $2; sub(/.*link="/, "", link); sub(/".*/, "", link)
    if (!(link in done)) {
      done[link] = 1
      printf "devscope_device_nvlink_errors_total{link=\"%s\",kind=\"replay\"};NVLink/%s/Replay Errors;number;counter\n", link, link
      printf "devscope_device_nvlink_errors_total{link=\"%s\",kind=\"recovery\"};NVLink/%s/Recovery Errors;number;counter\n", link, link
      printf "devscope_device_nvlink_errors_total{link=\"%s\",kind=\"crc_flit\"};NVLink/%s/CRC Errors;number;counter\n", link, link
      printf "devscope_device_nvlink_transmit_bytes_total{link=\"%s\"};NVLink/%s/Data Tx;kib;counter\n", link, link
      printf "devscope_device_nvlink_receive_bytes_total{link=\"%s\"};NVLink/%s/Data Rx;kib;counter\n", link, link
    }
  }' "$tmp/devscope.flat" >>"$tmp/map"

echo "== devscope beside nvidia-smi"
awk -F'\t' -v map="$tmp/map" -v smi="$tmp/smi.flat" '
  function num(s) { sub(/^[ \t]+/, "", s); sub(/[^0-9.eE+-].*$/, "", s); return s + 0 }
  function isnum(s) { return s ~ /^[ \t]*[0-9]/ }
  # devscope value in nvidia-smi unit, as text.
  function convert(v, how) {
    if (how == "mhz") return sprintf("%.0f MHz", v / 1e6)
    if (how == "mib") return sprintf("%.1f MiB", v / 1048576)
    if (how == "kib") return sprintf("%.0f KiB", v / 1024)
    if (how == "kb") return sprintf("%.0f KB/s", v / 1024)
    if (how == "percent") return sprintf("%.0f %%", v * 100)
    if (how == "active") return v == 1 ? "Active" : "Not Active"
    if (how == "yesno") return v == 1 ? "Yes" : "No"
    return sprintf("%.10g", v)
  }
  # Whether nvidia-smi value s matches devscope value v.
  function agrees(v, s, how, kind,   a, b, tol) {
    if (how == "active") return (s == "Active") == (v == 1)
    if (how == "yesno") return (s == "Yes") == (v == 1)
    a = num(convert(v, how)); b = num(s)
    if (kind == "counter") return b >= a
    if (kind == "exact") return (how == "mib" || how == "number") ? (a - b <= 1 && b - a <= 1) : a == b
    tol = how == "percent" ? 10 : how == "mhz" ? 0.1 * b + 1 : how == "mib" ? 0.01 * b + 64 : \
          how == "kb" ? 0.5 * b + 1024 : how == "number" ? 0.25 * b + 3 : 0
    return a - b <= tol && b - a <= tol
  }
  BEGIN {
    while ((getline line < smi) > 0) { split(line, f, "\t"); smiv[f[1], f[2]] = f[3]; paths[f[1]] = paths[f[1]] "\n" f[2] }
    rows = 0
    while ((getline line < map) > 0) { split(line, f, ";"); ++rows; key[rows] = f[1]; path[rows] = f[2]; how[rows] = f[3]; kind[rows] = f[4] }
    # The driver versions, from the top of nvidia-smi -q.
    driver = smiv["-", "Driver Version"]; cuda = smiv["-", "CUDA Version"]
    bad = 0; compared = 0
  }
  {
    dev[$1, $2] = $3
    if ($1 ~ /^GPU-/ && !($1 in gpus)) { gpus[$1] = 1; ++gpu_count }
    if ($2 ~ /^devscope_device_driver_info/) info[$1] = $2
  }
  END {
    for (g in gpus) {
      if (paths[g] == "") { print g ": nvidia-smi -q does not list this GPU: MISMATCH"; ++bad; continue }
      printf "%s\n  %-70s %-22s %-22s %s\n", g, "series", "devscope", "nvidia-smi", "verdict"
      for (r = 1; r <= rows; ++r) {
        n = split(substr(paths[g], 2), list, "\n"); s = ""; found = 0
        for (i = 1; i <= n; ++i) if (list[i] ~ ("^" path[r] "$")) { s = smiv[g, list[i]]; found = 1; break }
        has = (g, key[r]) in dev
        smi_has = found && s != "N/A" && s != "" && s !~ /^Unknown/ && s !~ /^Not Supported/ && \
                  !(how[r] != "active" && how[r] != "yesno" && !isnum(s))
        if (!has && !smi_has) verdict = "absent"
        # A reason the GPU does not support has no series; nvidia-smi lists every reason.
        else if (!has && how[r] == "active" && s == "Not Active") verdict = "absent (not supported?)"
        else if (!has) { verdict = "MISSING"; ++bad }
        else if (!smi_has) verdict = "EXTRA"
        else if (agrees(dev[g, key[r]], s, how[r], kind[r])) verdict = "ok"
        else if (kind[r] == "live") verdict = "DIFFERS (live)"
        else { verdict = "MISMATCH"; ++bad }
        ++compared
        printf "  %-70s %-22s %-22s %s\n", key[r], has ? convert(dev[g, key[r]], how[r]) : "-", \
               found ? s : "-", verdict
      }
      want = "devscope_device_driver_info{driver_version=\"" driver "\",cuda_driver_version=\"" cuda "\"}"
      verdict = info[g] == want ? "ok" : "MISMATCH"
      if (verdict != "ok") ++bad
      labels = info[g]; sub(/^[^{]*/, "", labels)
      printf "  %-70s %-22s %-22s %s\n", "devscope_device_driver_info", labels == "" ? "-" : labels, \
             driver " / CUDA " cuda, verdict
    }
    if (gpu_count == 0) { print "devscope reports no GPU (no device named GPU-...)"; exit 2 }
    printf "== %d series compared on %d GPU(s); %d MISMATCH or MISSING\n", compared, gpu_count, bad
    exit bad > 0 ? 1 : 0
  }' "$tmp/devscope.flat"
status=$?
echo "== XIDs devscope counted (nvidia-smi does not report them)"
grep -E '^devscope_device_(xid_errors_total|last_xid_timestamp_seconds|errors_total\{[^}]*kind="xid")' "$tmp/metrics" || echo "(none)"
exit "$status"
