// Which container a process runs in, from its /proc/PID/cgroup: the container runtime puts each
// container's processes in a cgroup named after the container's ID. The shapes, by cgroup driver
// and runtime (cgroup v1 repeats the path per controller; v2 has one "0::" line):
//
//   cgroupfs, containerd: /kubepods/burstable/pod<pod-uid>/<64-hex id>
//   cgroupfs, CRI-O:      /kubepods/burstable/pod<pod-uid>/crio-<id>
//   systemd, containerd:  /kubepods.slice/kubepods-burstable.slice/
//                           kubepods-burstable-pod<pod_uid>.slice/cri-containerd-<id>.scope
//   systemd, CRI-O:       .../kubepods-pod<pod_uid>.slice/crio-<id>.scope (conmon's own
//                           crio-conmon-<id>.scope is not the container's)
//   systemd, Docker:      .../docker-<id>.scope
//
// A path may go on below the container's cgroup (a runtime's sub-cgroup, e.g. CRI-O's
// ".../crio-<id>.scope/container") or start above the node's (a node that is itself a
// container, as under kind), so the deepest component that names a container decides.
#ifndef DEVSCOPE_KUBELET_PROCESS_CGROUP_H_
#define DEVSCOPE_KUBELET_PROCESS_CGROUP_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devscope {

struct ProcessCgroup {
  std::string container_id;  // 64 lowercase hex digits, as the CRI's Container.id
  std::string pod_uid;       // with dashes; empty when the path names no pod
};

// The container that the /proc/PID/cgroup text `text` names; nullopt when no line names one (a
// process of the host, or a shape devscope does not know).
std::optional<ProcessCgroup> ParseProcessCgroup(absl::string_view text);

// Reads <procfs>/<pid>/cgroup. NotFound when the process is gone; another error when it cannot
// be read; nullopt inside when it runs in no container.
absl::StatusOr<std::optional<ProcessCgroup>> ReadProcessCgroup(absl::string_view procfs,
                                                               uint32_t pid);

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_PROCESS_CGROUP_H_
