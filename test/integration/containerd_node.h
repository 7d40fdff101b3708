// A private containerd for tests that need a real container runtime: its own root, state,
// sockets and configuration under a temporary directory (nothing of the machine's own containerd
// is touched), the CRI plugin on, and a busybox image made here from /bin/busybox (no registry)
// imported into the CRI's namespace and used as the sandbox image too. Plus the kubelet's side
// of the CRI (proto/cri/v1/api.proto) to run a pod sandbox and a container in it, as the kubelet
// would: host network (there is no CNI plugin), the kubelet's labels, a cgroupfs parent of the
// kubelet's shape. Destroying it removes every pod it ran, stops containerd, and removes the
// cgroups and the directory.
#ifndef DEVSCOPE_TEST_INTEGRATION_CONTAINERD_NODE_H_
#define DEVSCOPE_TEST_INTEGRATION_CONTAINERD_NODE_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace devscope {

// A pod of one container, as the kubelet asks a runtime for it.
struct PodToRun {
  std::string ns;
  std::string name;
  std::string uid;
  std::string container;
  std::vector<std::string> command;  // the container's
};

struct RunningPod {
  std::string sandbox_id;
  std::string container_id;
  pid_t pid = -1;  // the container's process, in the host's PID namespace
};

class PrivateContainerd {
 public:
  // Why this machine cannot run a private containerd at all: not root, or containerd, ctr, its
  // runc shim, runc or busybox not installed (scripts/install-deps installs them). Empty when it
  // can try.
  static std::string Unavailable();

  // Starts containerd in `dir` (a short path: it holds unix sockets), waits until its CRI
  // answers, and imports the busybox image. The error carries containerd's log.
  static absl::StatusOr<std::unique_ptr<PrivateContainerd>> Start(const std::string& dir);
  ~PrivateContainerd();
  PrivateContainerd(const PrivateContainerd&) = delete;
  PrivateContainerd& operator=(const PrivateContainerd&) = delete;

  // Runs /bin/true in a plain container (ctr run, not the CRI): an error, with ctr's output,
  // when runc cannot run a container on this machine at all.
  absl::Status Probe();

  // RunPodSandbox, CreateContainer and StartContainer through the CRI, then the container's PID
  // from ContainerStatus.
  absl::StatusOr<RunningPod> RunPod(const PodToRun& pod);

  // The CRI socket (containerd's gRPC socket).
  const std::string& socket_path() const { return socket_path_; }
  std::string Log() const;

 private:
  explicit PrivateContainerd(const std::string& dir);
  absl::Status Launch();
  absl::Status ImportImage();
  std::string Ctr(const std::vector<std::string>& args, int* exit_code);
  void RemovePods();

  class Cri;
  const std::string dir_;
  const std::string socket_path_;
  // Every cgroup this containerd makes is under this one (cgroup_parent, ctr run --cgroup), so
  // that the destructor can remove them all from each hierarchy.
  const std::string cgroup_root_;
  pid_t pid_ = -1;
  std::unique_ptr<Cri> cri_;
  std::vector<std::string> sandboxes_;
};

}  // namespace devscope

#endif  // DEVSCOPE_TEST_INTEGRATION_CONTAINERD_NODE_H_
