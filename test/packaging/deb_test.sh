#!/usr/bin/env bash
# Builds the .deb with CPack from a configured build tree, then checks it the way a node would see
# it: metadata and contents (dpkg-deb), dependencies computed from the binary, conffiles, maintainer
# scripts, the installed binary's --version/--help/bad-flag behaviour in a scratch root, the shipped
# config against the binary, the man page, the systemd unit (systemd-analyze verify and security)
# and lintian.
# usage: deb_test.sh BUILD_DIR SOURCE_DIR INTERFACE_MD
set -euo pipefail
# shellcheck source=test/packaging/https.sh
source "$(dirname "${BASH_SOURCE[0]}")/https.sh"
trap 'echo "FAIL: unexpected error (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR

build=${1:?usage: deb_test.sh BUILD_DIR SOURCE_DIR INTERFACE_MD}
src=${2:?usage: deb_test.sh BUILD_DIR SOURCE_DIR INTERFACE_MD}
interface=${3:?usage: deb_test.sh BUILD_DIR SOURCE_DIR INTERFACE_MD}
[[ -r $interface ]] || { echo "FAIL: cannot read the interface spec $interface" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# --- build --------------------------------------------------------------------------------------
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log" >&2; echo "FAIL: cpack could not build the package" >&2; exit 1; }
debs=("$tmp"/out/devscope_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || { echo "FAIL: expected one devscope_*.deb, got: ${debs[*]}" >&2; exit 1; }
deb=${debs[0]}
ok "built $(basename "$deb")"

# --- metadata -----------------------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
project_version=$(sed -n 's/^project(devscope VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ -n $project_version ]] || fail "could not read the project version from CMakeLists.txt"
[[ $(field Package) == devscope ]] || fail "Package is '$(field Package)', want devscope"
[[ $(field Version) == "$project_version"-* ]] || fail "Version '$(field Version)' does not start with $project_version-"
[[ $(field Architecture) == "$(dpkg --print-architecture)" ]] || fail "Architecture is '$(field Architecture)'"
[[ $(field Section) == admin ]] || fail "Section is '$(field Section)', want admin"
[[ $(field Maintainer) == *'<'*@*'>' ]] || fail "Maintainer '$(field Maintainer)' has no address"
[[ -n $(field Description) ]] || fail "no Description"
[[ $(basename "$deb") == "devscope_$(field Version)_$(field Architecture).deb" ]] ||
  fail "file name $(basename "$deb") is not PACKAGE_VERSION_ARCH.deb"
depends=$(field Depends)
[[ -n $depends ]] || fail "Depends is empty: dpkg-shlibdeps did not run"

# Depends must be what the binary links, not a guess: every NEEDED library's package is listed.
dpkg-deb -x "$deb" "$tmp/root"
bin=$tmp/root/usr/bin/devscope
[[ -x $bin ]] || { echo "FAIL: /usr/bin/devscope is not in the package" >&2; exit 1; }
while read -r soname; do
  # awk reads all its input (no early exit), so ldconfig never dies of SIGPIPE under pipefail.
  path=$(ldconfig -p | awk -v s="$soname" '$1 == s && !p {p = $NF} END {print p}')
  [[ -n $path ]] || { fail "NEEDED $soname is not known to ldconfig"; continue; }
  pkg=$({ dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true; } |
    awk -F: 'NR == 1 {print $1}')
  [[ -n $pkg ]] || { fail "no Debian package owns $path (NEEDED $soname)"; continue; }
  # The library's shlibs file may name a virtual package its package Provides (libspdlog1.10-fmt9).
  names=" $pkg $(dpkg-query -W -f='${Provides}' "$pkg" 2>/dev/null | sed 's/([^)]*)//g; s/,/ /g') "
  found=
  for dep in $(sed 's/([^)]*)//g; s/[,|]/ /g' <<<"$depends"); do
    [[ $names == *" $dep "* ]] && found=$dep
  done
  [[ -n $found ]] || fail "Depends lacks $pkg, which provides NEEDED $soname: $depends"
done < <(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}' | sort -u)
ok "Depends covers every NEEDED library: $depends"

# --- contents -----------------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {sub(/^\.\//, "", $6); print "/" $6}' | sort >"$tmp/files"
cat >"$tmp/want" <<'EOF'
/etc/default/devscope
/etc/devscope/config.yaml
/lib/systemd/system/devscope.service
/usr/bin/devscope
/usr/lib/tmpfiles.d/devscope.conf
/usr/share/devscope/alerts/devscope.rules.yaml
/usr/share/doc/devscope/changelog.Debian.gz
/usr/share/doc/devscope/copyright
/usr/share/doc/devscope/install.md
/usr/share/lintian/overrides/devscope
/usr/share/man/man1/devscope.1.gz
EOF
for d in "$src"/dashboards/*.json; do echo "/usr/share/devscope/dashboards/$(basename "$d")"; done >>"$tmp/want"
for r in "$src"/docs/runbooks/*.md; do echo "/usr/share/doc/devscope/runbooks/$(basename "$r")"; done >>"$tmp/want"
sort -o "$tmp/want" "$tmp/want"
diff -u "$tmp/want" "$tmp/files" >"$tmp/files.diff" ||
  fail "package contents differ from the expected list (- missing, + unexpected):
$(cat "$tmp/files.diff")"
dpkg-deb -c "$deb" | awk '$2 != "root/root" {print}' | grep . && fail "files not owned by root/root"
mode() { dpkg-deb -c "$deb" | awk -v f="./$1" '$6 == f {print $1}'; }
[[ $(mode usr/bin/devscope) == -rwxr-xr-x ]] || fail "/usr/bin/devscope mode $(mode usr/bin/devscope)"
[[ $(mode etc/devscope/config.yaml) == -rw-r--r-- ]] || fail "config.yaml mode $(mode etc/devscope/config.yaml)"
ok "contents and modes"

# --- control files --------------------------------------------------------------------------------
dpkg-deb -e "$deb" "$tmp/control"
printf '/etc/default/devscope\n/etc/devscope/config.yaml\n' | diff -u - <(sort "$tmp/control/conffiles") ||
  fail "conffiles does not list exactly /etc/default/devscope and /etc/devscope/config.yaml"
for s in postinst prerm postrm; do
  [[ -x $tmp/control/$s ]] || { fail "maintainer script $s missing or not executable"; continue; }
  [[ $(head -n1 "$tmp/control/$s") == '#!/bin/sh' ]] || fail "$s does not start with #!/bin/sh"
  sh -n "$tmp/control/$s" || fail "$s has a shell syntax error"
  grep -q '^set -e' "$tmp/control/$s" || fail "$s does not set -e"
done
ok "conffiles and maintainer scripts"

# dpkg itself must register the conffiles: unpack into a scratch admin directory (no scripts run
# on --unpack without a preinst, so nothing touches this machine). Needs root for the chown.
if [[ $(id -u) -eq 0 ]]; then
  admin=$tmp/dpkgroot
  mkdir -p "$admin/var/lib/dpkg/updates" "$admin/var/lib/dpkg/info"
  : >"$admin/var/lib/dpkg/status"
  dpkg --root="$admin" --force-depends --force-script-chrootless --unpack "$deb" >"$tmp/dpkg.log" 2>&1 ||
    { cat "$tmp/dpkg.log" >&2; fail "dpkg --root --unpack failed"; }
  conf=$(dpkg-query --admindir="$admin/var/lib/dpkg" -W -f='${Conffiles}' devscope 2>/dev/null || true)
  for f in /etc/default/devscope /etc/devscope/config.yaml; do
    grep -q " $f " <<<"$conf" || fail "dpkg did not register $f as a conffile: $conf"
  done
  [[ -x $admin/usr/bin/devscope ]] || fail "dpkg --root did not install /usr/bin/devscope"
  ok "dpkg --root --unpack registers the conffiles"
else
  echo "note: not root, skipping the dpkg --root unpack (dpkg -x still checks the files)"
fi

# --- the installed binary -------------------------------------------------------------------------
version_out=$("$bin" --version 2>&1) || fail "devscope --version exited $?"
[[ $version_out =~ ^devscope\ ${project_version//./\\.}\ \(revision\ [^\)]+\)$ ]] ||
  fail "devscope --version printed '$version_out', want 'devscope $project_version (revision REV)'"
help_out=$("$bin" --help 2>&1) || fail "devscope --help exited $?"
# Every flag in interface.md's command-line table must be in --help (and so in the man page).
mapfile -t flags < <(sed -n '/^## Command line/,/^## /p' "$interface" | grep -o '`--[a-z0-9.-]*`' |
  tr -d '`' | sort -u)
[[ ${#flags[@]} -gt 10 ]] || fail "could not read the flag table of interface.md (got ${#flags[@]} flags)"
# The man source without font changes and escapes: \fB\-\-web\fR.listen\-address -> --web.listen-address
man_src=$(zcat "$tmp/root/usr/share/man/man1/devscope.1.gz")
man_text=$(sed 's/\\f[BIRP]//g; s/\\-/-/g; s/\\&//g' <<<"$man_src")
for f in "${flags[@]}"; do
  grep -qF -- "$f" <<<"$help_out" || fail "devscope --help does not list $f"
  grep -qF -- "$f" <<<"$man_text" || fail "devscope(1) does not list $f"
done
grep -q '^\.TH DEVSCOPE "1"' <<<"$man_src" || fail "devscope.1.gz has no .TH DEVSCOPE 1 header"
rc=0
"$bin" --no-such-flag >"$tmp/bad.out" 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "devscope --no-such-flag exited $rc, want 2"
ok "installed binary: --version, --help (${#flags[@]} flags), man page, bad flag"

# The shipped config (all comments) and its example, uncommented, must both be accepted by the
# binary's loader: exit status 2 means a bad config; still serving after 3 s means accepted.
awk 'f {sub(/^# ?/, ""); print} /^# collectors:/ && !f {f = 1; sub(/^# ?/, ""); print}' \
  "$tmp/root/etc/devscope/config.yaml" >"$tmp/example.yaml"
grep -q '^collectors:' "$tmp/example.yaml" || fail "could not uncomment the example in config.yaml"
mkdir -p "$tmp/sys" "$tmp/dev" "$tmp/plugins"
for cfg in "$tmp/root/etc/devscope/config.yaml" "$tmp/example.yaml"; do
  rc=0
  timeout 3 "$bin" --config.file="$cfg" --web.listen-address=127.0.0.1:0 \
    --kubelet.pod-resources-socket="$tmp/none.sock" --kubelet.device-plugins-dir="$tmp/plugins" \
    --path.sysfs="$tmp/sys" --path.devfs="$tmp/dev" --no-device-plugin \
    --no-collector.nvml --no-collector.drm --no-collector.netdev >"$tmp/cfg.out" 2>&1 || rc=$?
  # 124: still serving when timeout stopped it, so the file was accepted.
  [[ $rc -eq 124 ]] || fail "devscope exited $rc with $(basename "$cfg") instead of running: $(cat "$tmp/cfg.out")"
done
ok "config.yaml and its example are accepted"

# HTTPS through the installed binary: it answers a TLS client with the node's OpenSSL 3.
make_certificate "$tmp/tls.key" "$tmp/tls.crt" || fail "openssl could not make a certificate"
printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n' >"$tmp/web.yaml"
"$bin" --web.config.file="$tmp/web.yaml" --web.listen-address=127.0.0.1:0 \
  --kubelet.pod-resources-socket="$tmp/none.sock" --path.sysfs="$tmp/sys" --path.devfs="$tmp/dev" \
  --no-device-plugin --no-collector.nvml --no-collector.drm --no-collector.netdev >"$tmp/tls.out" 2>&1 &
tls_pid=$!
port=$(logged_https_port "$tmp/tls.out")
answer=""
[[ -n $port ]] && answer=$(https_get "$port" "$tmp/tls.crt" /healthz | head -n1 | tr -d '\r')
kill "$tls_pid" 2>/dev/null || true
wait "$tls_pid" 2>/dev/null || true
[[ $answer == "HTTP/1.1 200 OK" ]] ||
  fail "installed binary did not answer over HTTPS (got '$answer'): $(tail -n3 "$tmp/tls.out")"
ok "installed binary serves HTTPS"

# --- the systemd unit -----------------------------------------------------------------------------
unit=$tmp/root/lib/systemd/system/devscope.service
grep -qx 'ExecStart=/usr/bin/devscope --config.file=/etc/devscope/config.yaml $DEVSCOPE_ARGS' "$unit" ||
  fail "ExecStart is not /usr/bin/devscope --config.file=/etc/devscope/config.yaml \$DEVSCOPE_ARGS"
for line in 'After=network-online.target' 'Wants=network-online.target' 'Before=kubelet.service' \
  'Restart=on-failure' 'RestartPreventExitStatus=2' 'EnvironmentFile=-/etc/default/devscope' \
  'ProtectSystem=strict' 'ProtectHome=yes' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
  'CapabilityBoundingSet=' 'StandardOutput=journal' \
  'ReadWritePaths=-/var/lib/kubelet/device-plugins -/var/lib/kubelet/plugins_registry -/run/cdi' \
  'WantedBy=multi-user.target kubelet.service'; do
  grep -qxF -- "$line" "$unit" || fail "devscope.service lacks '$line'"
done
grep -q '^RestartSec=' "$unit" && grep -q '^StartLimitIntervalSec=' "$unit" && grep -q '^StartLimitBurst=' "$unit" ||
  fail "devscope.service lacks RestartSec/StartLimitIntervalSec/StartLimitBurst"
grep -q '^DEVSCOPE_ARGS=' "$tmp/root/etc/default/devscope" || fail "/etc/default/devscope does not set DEVSCOPE_ARGS"
# verify needs ExecStart's binary to exist: point a copy of the unit, identical but for that path,
# at the scratch root; MANPATH lets it find Documentation=man:devscope(1) there. No running
# systemd is needed. verify exits 0 on warnings (unknown keys, bad values), so any output fails.
mkdir -p "$tmp/unit"
sed "s#^ExecStart=/usr/bin/devscope #ExecStart=$bin #" "$unit" >"$tmp/unit/devscope.service"
[[ $(diff "$unit" "$tmp/unit/devscope.service" | grep -c '^[<>]') -eq 2 ]] || fail "unit copy differs in more than ExecStart"
(cd "$tmp" && MANPATH=$tmp/root/usr/share/man SYSTEMD_LOG_LEVEL=notice \
  systemd-analyze verify "$tmp/unit/devscope.service") >"$tmp/verify.out" 2>&1 ||
  fail "systemd-analyze verify failed: $(cat "$tmp/verify.out")"
[[ ! -s $tmp/verify.out ]] || fail "systemd-analyze verify warned: $(cat "$tmp/verify.out")"
# The hardening as systemd scores it (0 = locked down, 10 = none): keep it at "OK" or better.
(cd "$tmp" && systemd-analyze security --offline=true --threshold=30 "$unit") >"$tmp/security.out" 2>&1 ||
  fail "systemd-analyze security: exposure above 3.0: $(tail -n1 "$tmp/security.out")"
ok "systemd unit verifies; $(grep -o 'Overall exposure level.*' "$tmp/security.out" || true)"
tmpfiles=$tmp/root/usr/lib/tmpfiles.d/devscope.conf
for d in /var/lib/kubelet/device-plugins /var/lib/kubelet/plugins_registry /run/cdi; do
  grep -q "^d $d " "$tmpfiles" || fail "devscope.conf (tmpfiles.d) does not create $d"
done
(cd "$tmp" && systemd-tmpfiles --root="$tmp/tmpfilesroot" --create "$tmpfiles") >"$tmp/tmpfiles.out" 2>&1 ||
  fail "systemd-tmpfiles rejected devscope.conf: $(cat "$tmp/tmpfiles.out")"
[[ -d $tmp/tmpfilesroot/var/lib/kubelet/device-plugins ]] || fail "tmpfiles.d did not create device-plugins"

# --- lintian --------------------------------------------------------------------------------------
# No error and no warning: each accepted warning is overridden in packaging/debian/lintian-overrides
# with its reason.
lintian --allow-root --pedantic --display-info --fail-on error,warning "$deb" >"$tmp/lintian.out" 2>&1 ||
  fail "lintian: $(cat "$tmp/lintian.out")"
ok "lintian clean ($(grep -c '^[IPX]:' "$tmp/lintian.out" || true) info/pedantic tags)"
cat "$tmp/lintian.out"

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all package checks passed"
