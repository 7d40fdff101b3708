# What a kubelet does with a rendered DaemonSet's pod, done with podman, for deployment_test.sh.
# Sourced, not run. Expects: pm (podman with the test's storage), fail, $tmp, $host (the test
# host root: every hostPath maps to $host/<path>).
#
# Anything in the pod spec that these functions do not carry out is an error, never skipped: the
# test must not pass by ignoring part of what the chart renders.

# pod_run_args DS_JSON: the `podman run` arguments for the DaemonSet's only container, one per
# line, image and args last. ConfigMaps come from $tmp/configmaps/NAME/KEY (written by
# write_configmaps), Secrets from $tmp/secrets/NAME/KEY.
pod_run_args() {
  local ds=$1 pod container
  pod=$(jq -c '.spec.template.spec' <<<"$ds")
  container=$(jq -c '.containers[0]' <<<"$pod")
  [[ $(jq '.containers | length' <<<"$pod") == 1 ]] || { fail "the pod has more than one container"; return 1; }
  [[ $(jq '(.initContainers // []) | length' <<<"$pod") == 0 ]] || { fail "init containers are not run by this test"; return 1; }
  [[ $(jq -r '.hostNetwork // false' <<<"$pod") == false ]] || { fail "hostNetwork is not run by this test"; return 1; }
  [[ -z $(jq -r '.command // empty' <<<"$container") ]] ||
    { fail "container.command is not run by this test"; return 1; }

  # The pod's own security context (defaults for the container's).
  local pod_sc unknown
  pod_sc=$(jq -c '.securityContext // {}' <<<"$pod")
  unknown=$(jq -r 'keys - ["runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups", "seccompProfile"] | join(",")' <<<"$pod_sc")
  [[ -z $unknown ]] || { fail "pod securityContext fields not run by this test: $unknown"; return 1; }
  jq -r '.supplementalGroups[]? | "--group-add=\(.)"' <<<"$pod_sc"

  # The container's security context.
  local sc
  sc=$(jq -c --argjson pod "$pod_sc" '($pod | del(.supplementalGroups)) + (.securityContext // {})' <<<"$container")
  unknown=$(jq -r 'keys - ["privileged", "runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
    "allowPrivilegeEscalation", "capabilities", "seccompProfile"] | join(",")' <<<"$sc")
  [[ -z $unknown ]] || { fail "securityContext fields not run by this test: $unknown"; return 1; }
  local user group
  user=$(jq -r '.runAsUser // 0' <<<"$sc")
  group=$(jq -r '.runAsGroup // 0' <<<"$sc")
  # The image runs as root by default (it has no USER), so an unset runAsUser is 0.
  if [[ $(jq -r '.runAsNonRoot // false' <<<"$sc") == true && $user == 0 ]]; then
    fail "runAsNonRoot with user 0: the kubelet refuses to start the container"; return 1
  fi
  echo "--user=$user:$group"
  [[ $(jq -r '.privileged // false' <<<"$sc") == true ]] && echo "--privileged"
  # A read-only root and nothing else: podman would add tmpfs on /tmp, /run and /var/tmp.
  [[ $(jq -r '.readOnlyRootFilesystem // false' <<<"$sc") == true ]] && printf '%s\n' --read-only --read-only-tmpfs=false
  [[ $(jq -r '.allowPrivilegeEscalation // true' <<<"$sc") == false ]] && echo "--security-opt=no-new-privileges"
  jq -r '.capabilities.drop[]? | "--cap-drop=\(.)"' <<<"$sc"
  jq -r '.capabilities.add[]? | "--cap-add=\(.)"' <<<"$sc"
  case $(jq -r '.seccompProfile.type // "RuntimeDefault"' <<<"$sc") in
    RuntimeDefault) ;;  # podman's default profile is the runtime's default
    Unconfined) echo "--security-opt=seccomp=unconfined" ;;
    *) fail "seccompProfile other than RuntimeDefault/Unconfined is not run by this test"; return 1 ;;
  esac

  # Resources: the limits are the container's cgroup; requests only schedule.
  local memory cpu
  memory=$(jq -r '.resources.limits.memory // empty' <<<"$container")
  if [[ -n $memory ]]; then
    [[ $memory =~ ^([0-9]+)(Ki|Mi|Gi)?$ ]] || { fail "memory limit $memory is not run by this test"; return 1; }
    local unit=${BASH_REMATCH[2]}
    echo "--memory=${BASH_REMATCH[1]}$(case $unit in Ki) echo k ;; Mi) echo m ;; Gi) echo g ;; *) echo b ;; esac)"
  fi
  cpu=$(jq -r '.resources.limits.cpu // empty' <<<"$container")
  if [[ -n $cpu ]]; then
    [[ $cpu =~ ^([0-9]+)m$ ]] && cpu=$(awk -v m="${BASH_REMATCH[1]}" 'BEGIN { printf "%.3f", m / 1000 }')
    echo "--cpus=$cpu"
  fi

  # Environment: literal values only.
  [[ $(jq '[.env[]? | select(.valueFrom)] | length' <<<"$container") == 0 ]] ||
    { fail "env valueFrom is not run by this test"; return 1; }
  jq -r '.env[]? | "--env=\(.name)=\(.value // "")"' <<<"$container"

  # Volumes, in the order of the container's mounts.
  local mount name mount_path read_only volume source
  while read -r mount; do
    name=$(jq -r .name <<<"$mount")
    mount_path=$(jq -r .mountPath <<<"$mount")
    read_only=$(jq -r '.readOnly // false' <<<"$mount")
    [[ -z $(jq -r '.subPath // empty' <<<"$mount") ]] || { fail "subPath is not run by this test"; return 1; }
    volume=$(jq -c --arg n "$name" '.volumes[] | select(.name == $n)' <<<"$pod")
    [[ -n $volume ]] || { fail "mount $name has no volume"; return 1; }
    source=$(volume_source "$volume") || return 1
    echo "--volume=$source:$mount_path:$([[ $read_only == true ]] && echo ro || echo rw)"
  done < <(jq -c '.volumeMounts[]?' <<<"$container")

  echo "$(jq -r .image <<<"$container")"
  jq -r '.args[]?' <<<"$container"
}

# volume_source VOLUME_JSON: the host directory that backs a volume, after the kubelet's checks.
volume_source() {
  local volume=$1 path type
  if [[ $(jq 'has("hostPath")' <<<"$volume") == true ]]; then
    path=$(jq -r .hostPath.path <<<"$volume")
    type=$(jq -r '.hostPath.type // ""' <<<"$volume")
    case $type in
      Directory) [[ -d $host$path ]] || { fail "hostPath $path (type Directory) does not exist on the node: the pod would not start"; return 1; } ;;
      DirectoryOrCreate) mkdir -p "$host$path" ;;
      "") ;;
      *) fail "hostPath type $type is not run by this test"; return 1 ;;
    esac
    echo "$host$path"
  elif [[ $(jq 'has("configMap")' <<<"$volume") == true ]]; then
    path=$tmp/configmaps/$(jq -r .configMap.name <<<"$volume")
    [[ -d $path ]] || { fail "ConfigMap $(jq -r .configMap.name <<<"$volume") is not in the rendered chart"; return 1; }
    echo "$path"
  elif [[ $(jq 'has("secret")' <<<"$volume") == true ]]; then
    path=$tmp/secrets/$(jq -r .secret.secretName <<<"$volume")
    [[ -d $path ]] || { fail "Secret $(jq -r .secret.secretName <<<"$volume") does not exist: the pod would not start"; return 1; }
    echo "$path"
  else
    fail "volume kind not run by this test: $volume"; return 1
  fi
}

# write_configmaps RENDERED_YAML: each ConfigMap's data as files under $tmp/configmaps/NAME/.
write_configmaps() {
  local cm name key
  rm -rf "$tmp/configmaps"
  while read -r cm; do
    name=$(jq -r .metadata.name <<<"$cm")
    mkdir -p "$tmp/configmaps/$name"
    while read -r key; do
      jq -j --arg k "$key" '.data[$k]' <<<"$cm" >"$tmp/configmaps/$name/$key"
    done < <(jq -r '.data // {} | keys[]' <<<"$cm")
  done < <(yq -c 'select(.kind == "ConfigMap")' "$1")
}

# probe CONTAINER_JSON KIND IP CID: runs the container's livenessProbe or readinessProbe once, as
# the kubelet does: HTTP(S) GET from the node to the pod IP with no client certificate and no
# credentials, the server's certificate not verified; 200..399 is success.
probe() {
  local container=$1 kind=$2 ip=$3 cid=$4 spec port scheme path timeout code
  spec=$(jq -c --arg k "$kind" '.[$k] // empty' <<<"$container")
  [[ -n $spec ]] || { echo "no $kind"; return 0; }
  timeout=$(jq -r '.timeoutSeconds // 1' <<<"$spec")
  if [[ $(jq 'has("httpGet")' <<<"$spec") == true ]]; then
    port=$(jq -r '.httpGet.port' <<<"$spec")
    [[ $port =~ ^[0-9]+$ ]] || port=$(jq -r --arg p "$port" '.ports[] | select(.name == $p) | .containerPort' <<<"$container")
    scheme=$(jq -r '.httpGet.scheme // "HTTP"' <<<"$spec" | tr 'A-Z' 'a-z')
    path=$(jq -r '.httpGet.path // "/"' <<<"$spec")
    [[ $(jq '.httpGet.httpHeaders // [] | length' <<<"$spec") == 0 ]] || { echo "httpHeaders not run by this test"; return 1; }
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time "$timeout" "$scheme://$ip:$port$path" || true)
    [[ $code -ge 200 && $code -lt 400 ]] || { echo "$kind GET $scheme://$ip:$port$path: ${code:-no answer}"; return 1; }
  elif [[ $(jq 'has("tcpSocket")' <<<"$spec") == true ]]; then
    port=$(jq -r '.tcpSocket.port' <<<"$spec")
    [[ $port =~ ^[0-9]+$ ]] || port=$(jq -r --arg p "$port" '.ports[] | select(.name == $p) | .containerPort' <<<"$container")
    timeout "$timeout" bash -c "exec 3<>/dev/tcp/$ip/$port" 2>/dev/null || { echo "$kind TCP $ip:$port refused"; return 1; }
  elif [[ $(jq 'has("exec")' <<<"$spec") == true ]]; then
    local -a command
    mapfile -t command < <(jq -r '.exec.command[]' <<<"$spec")
    timeout "$timeout" pm exec "$cid" "${command[@]}" >/dev/null 2>&1 || { echo "$kind exec ${command[*]} failed"; return 1; }
  else
    echo "$kind: probe kind not run by this test"; return 1
  fi
}

# workload_args ADMIT_JSON: `podman run` arguments that give a container exactly what Allocate
# answered: device specs, mounts, variables, annotations and CDI devices by name.
workload_args() {
  jq -r '.response | (.devices[]? | "--device=\(.host_path):\(.container_path):\(.permissions)"),
    (.mounts[]? | "--volume=\(.host_path):\(.container_path):\(if .read_only then "ro" else "rw" end)"),
    ((.envs // {}) | to_entries[] | "--env=\(.key)=\(.value)"),
    ((.annotations // {}) | to_entries[] | "--annotation=\(.key)=\(.value)"),
    (.cdi_devices[]? | "--device=\(.name)")' <<<"$1"
}
