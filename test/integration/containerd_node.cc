#include "test/integration/containerd_node.h"

#include <openssl/evp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cri/v1/api.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;

constexpr char kImage[] = "localhost/devscope-test/busybox:1";
// The namespace of containerd's metadata that its CRI plugin uses.
constexpr char kCriNamespace[] = "k8s.io";

// The path of `name` in $PATH (and the sbin directories root's PATH has), or "".
std::string FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs = absl::StrSplit(path == nullptr ? "" : path, ':');
  for (const char* d : {"/usr/local/sbin", "/usr/sbin", "/sbin"}) dirs.push_back(d);
  for (const std::string& d : dirs) {
    const std::string candidate = d + "/" + name;
    if (!d.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    absl::StrAppend(&hex, absl::Hex(digest[i], absl::kZeroPad2));
  }
  return hex;
}

// Stores `content` as a blob of the OCI layout `layout`; its descriptor.
nlohmann::json AddBlob(const std::string& layout, const std::string& media_type,
                       const std::string& content) {
  const std::string digest = Sha256Hex(content);
  WriteFile(layout + "/blobs/sha256/" + digest, content);
  return {{"mediaType", media_type},
          {"digest", "sha256:" + digest},
          {"size", static_cast<int64_t>(content.size())}};
}

// The OCI architecture of this machine (busybox is the host's own).
std::string Architecture() {
  utsname u{};
  uname(&u);
  const std::string machine = u.machine;
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64") return "arm64";
  return machine;
}

// An OCI image archive of one layer: /bin/busybox and the links it answers to, whose default
// process sleeps (it serves as the pod sandbox's image too, where a pause image would be).
absl::StatusOr<std::string> MakeBusyboxImage(const std::string& dir) {
  const std::string rootfs = dir + "/rootfs";
  const std::string layout = dir + "/layout";
  for (const char* d : {"/bin", "/proc", "/sys", "/dev", "/etc", "/tmp"}) {
    fs::create_directories(rootfs + d);
  }
  fs::create_directories(layout + "/blobs/sha256");
  std::error_code ec;
  fs::copy_file("/bin/busybox", rootfs + "/bin/busybox", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot copy /bin/busybox: ", ec.message()));
  for (const char* tool : {"sh", "sleep", "true", "cat"}) {
    fs::create_symlink("busybox", rootfs + "/bin/" + tool);
  }
  const std::string tar = FindProgram("tar");
  RunResult packed = RunCommand({tar, "--numeric-owner", "--owner=0", "--group=0", "-C", rootfs,
                                 "-cf", dir + "/layer.tar", "."});
  if (packed.exit_code != 0) return absl::InternalError("tar: " + packed.stderr_text);
  const std::string layer_tar = ReadFile(dir + "/layer.tar");
  const nlohmann::json config = {
      {"architecture", Architecture()},
      {"os", "linux"},
      {"config", {{"Entrypoint", {"/bin/sleep", "2147483647"}}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {"sha256:" + Sha256Hex(layer_tar)}}}}};
  const nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
      {"config", AddBlob(layout, "application/vnd.oci.image.config.v1+json", config.dump())},
      {"layers", {AddBlob(layout, "application/vnd.oci.image.layer.v1.tar", layer_tar)}}};
  nlohmann::json descriptor =
      AddBlob(layout, "application/vnd.oci.image.manifest.v1+json", manifest.dump());
  // ctr images import names the image after this annotation.
  descriptor["annotations"] = {{"io.containerd.image.name", kImage}};
  WriteFile(layout + "/index.json",
            nlohmann::json{{"schemaVersion", 2}, {"manifests", {descriptor}}}.dump());
  WriteFile(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  packed = RunCommand({tar, "-C", layout, "-cf", dir + "/image.tar", "."});
  if (packed.exit_code != 0) return absl::InternalError("tar: " + packed.stderr_text);
  return dir + "/image.tar";
}

// containerd's configuration: everything under `dir`; the native snapshotter (it works on any
// file system, and the image is 2 MB); no AppArmor profile (a host's AppArmor would need
// apparmor_parser to load containerd's); no oom_score_adj below containerd's own (the sandbox's
// -998 needs CAP_SYS_RESOURCE, which a CI runner that is itself a container may lack); plugins that
// would reach outside `dir` (/opt) or probe for file systems this test does not use, off.
std::string ConfigToml(const std::string& dir) {
  constexpr char kTemplate[] = R"(version = 2
root = "@DIR@/root"
state = "@DIR@/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "@DIR@/containerd.sock"
[ttrpc]
  address = "@DIR@/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "@IMAGE@"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "@DIR@/cni/bin"
    conf_dir = "@DIR@/cni/conf"
)";
  return absl::StrReplaceAll(kTemplate, {{"@DIR@", dir}, {"@IMAGE@", kImage}});
}

// The mount points of every cgroup hierarchy (v1 and v2).
std::vector<std::string> CgroupMounts() {
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mounts");
  std::string device, point, type, rest;
  while (in >> device >> point >> type && std::getline(in, rest)) {
    if (type == "cgroup" || type == "cgroup2") mounts.push_back(point);
  }
  return mounts;
}

// Removes the directories of the cgroup tree `path` (deepest first) in every hierarchy.
void RemoveCgroupTree(const std::string& path) {
  for (const std::string& mount : CgroupMounts()) {
    const std::string top = mount + path;
    std::error_code ec;
    if (!fs::is_directory(top, ec)) continue;
    std::vector<std::string> dirs = {top};
    for (auto it = fs::recursive_directory_iterator(top, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_directory(ec)) dirs.push_back(it->path());
    }
    std::sort(dirs.begin(), dirs.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const std::string& d : dirs) rmdir(d.c_str());
  }
}

// Detaches whatever is still mounted under `dir` (a container's root file system that a killed
// runtime left), deepest first, so that removing `dir` removes only its own files.
void UnmountUnder(const std::string& dir) {
  std::vector<std::string> points;
  std::ifstream in("/proc/self/mounts");
  std::string device, point, rest;
  while (in >> device >> point && std::getline(in, rest)) {
    if (point.rfind(dir + "/", 0) == 0) points.push_back(point);
  }
  std::sort(points.begin(), points.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& p : points) umount2(p.c_str(), MNT_DETACH);
}

absl::Status FromGrpc(const char* call, const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(call, ": ", status.error_message()));
}

}  // namespace

// The kubelet's side of the CRI, each call with a deadline.
class PrivateContainerd::Cri {
 public:
  explicit Cri(const std::string& socket_path)
      : stub_(runtime::v1::RuntimeService::NewStub(
            grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials()))) {}

  template <typename Request, typename Response>
  absl::Status Call(const char* name,
                    grpc::Status (runtime::v1::RuntimeService::Stub::*method)(grpc::ClientContext*,
                                                                              const Request&,
                                                                              Response*),
                    const Request& request, Response* response,
                    absl::Duration timeout = absl::Seconds(30)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return FromGrpc(name, (stub_.get()->*method)(&context, request, response));
  }

 private:
  std::unique_ptr<runtime::v1::RuntimeService::Stub> stub_;
};

std::string PrivateContainerd::Unavailable() {
  if (geteuid() != 0) return "not root: containerd runs containers only as root";
  std::vector<std::string> missing;
  for (const char* program : {"containerd", "ctr", "containerd-shim-runc-v2", "runc", "tar"}) {
    if (FindProgram(program).empty()) missing.push_back(program);
  }
  if (access("/bin/busybox", X_OK) != 0) missing.push_back("/bin/busybox (busybox-static)");
  if (!missing.empty()) {
    return absl::StrCat("not installed: ", absl::StrJoin(missing, ", "),
                        " (scripts/install-deps installs containerd, runc and busybox-static)");
  }
  return "";
}

PrivateContainerd::PrivateContainerd(const std::string& dir)
    : dir_(dir),
      socket_path_(dir + "/containerd.sock"),
      cgroup_root_("/devscope-test-" + fs::path(dir).filename().string()) {}

absl::StatusOr<std::unique_ptr<PrivateContainerd>> PrivateContainerd::Start(
    const std::string& dir) {
  std::unique_ptr<PrivateContainerd> containerd(new PrivateContainerd(dir));
  absl::Status status = containerd->Launch();
  if (status.ok()) status = containerd->ImportImage();
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(status.message(), "\ncontainerd's log:\n", containerd->Log()));
  }
  return containerd;
}

absl::Status PrivateContainerd::Launch() {
  fs::create_directories(dir_ + "/cni/conf");
  WriteFile(dir_ + "/config.toml", ConfigToml(dir_));
  pid_ = Spawn({FindProgram("containerd"), "--config", dir_ + "/config.toml"}, "/dev/null",
               dir_ + "/containerd.log", dir_ + "/containerd.log");
  if (pid_ < 0) return absl::InternalError("cannot start containerd");
  // The channel is made once the socket is there: a connection refused before would hold the
  // next attempts back by gRPC's reconnect backoff (seconds).
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  absl::Status answer = absl::UnavailableError("no socket yet");
  do {
    if (WaitUpTo(pid_, absl::ZeroDuration()).has_value()) {
      pid_ = -1;
      return absl::FailedPreconditionError("containerd exited");
    }
    if (cri_ == nullptr && fs::exists(socket_path_)) cri_ = std::make_unique<Cri>(socket_path_);
    if (cri_ != nullptr) {
      runtime::v1::ListContainersResponse response;
      answer = cri_->Call("ListContainers", &runtime::v1::RuntimeService::Stub::ListContainers,
                          runtime::v1::ListContainersRequest(), &response, absl::Seconds(1));
      if (answer.ok()) return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  return absl::DeadlineExceededError(
      absl::StrCat("containerd's CRI did not answer within 30 s: ", answer.ToString()));
}

std::string PrivateContainerd::Ctr(const std::vector<std::string>& args, int* exit_code) {
  std::vector<std::string> argv = {FindProgram("ctr"), "--address", socket_path_, "--namespace",
                                   kCriNamespace};
  argv.insert(argv.end(), args.begin(), args.end());
  const RunResult result = RunCommand(argv, absl::Seconds(60));
  *exit_code = result.exit_code;
  return result.stdout_text + result.stderr_text;
}

absl::Status PrivateContainerd::ImportImage() {
  fs::create_directories(dir_ + "/image");
  absl::StatusOr<std::string> tar = MakeBusyboxImage(dir_ + "/image");
  if (!tar.ok()) return tar.status();
  int exit_code = 0;
  const std::string output = Ctr({"images", "import", "--snapshotter", "native", *tar}, &exit_code);
  if (exit_code != 0) return absl::InternalError("ctr images import: " + output);
  return absl::OkStatus();
}

absl::Status PrivateContainerd::Probe() {
  int exit_code = 0;
  const std::string output = Ctr({"run", "--rm", "--snapshotter", "native", "--cgroup",
                                  cgroup_root_ + "/probe", kImage, "devscope-probe", "/bin/true"},
                                 &exit_code);
  if (exit_code != 0) return absl::FailedPreconditionError("ctr run: " + output);
  return absl::OkStatus();
}

absl::StatusOr<RunningPod> PrivateContainerd::RunPod(const PodToRun& pod) {
  using Stub = runtime::v1::RuntimeService::Stub;
  runtime::v1::PodSandboxConfig sandbox;
  sandbox.mutable_metadata()->set_name(pod.name);
  sandbox.mutable_metadata()->set_namespace_(pod.ns);
  sandbox.mutable_metadata()->set_uid(pod.uid);
  // The labels the kubelet puts on a pod's sandbox and on each of its containers.
  const std::map<std::string, std::string> pod_labels = {{"io.kubernetes.pod.name", pod.name},
                                                         {"io.kubernetes.pod.namespace", pod.ns},
                                                         {"io.kubernetes.pod.uid", pod.uid}};
  sandbox.mutable_labels()->insert(pod_labels.begin(), pod_labels.end());
  // The kubelet's cgroupfs shape for a BestEffort pod, under this containerd's own root.
  sandbox.mutable_linux()->set_cgroup_parent(
      absl::StrCat(cgroup_root_, "/kubepods/besteffort/pod", pod.uid));
  // The host's network: there is no CNI plugin to make the pod's own.
  sandbox.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      runtime::v1::NODE);

  runtime::v1::RunPodSandboxRequest run;
  *run.mutable_config() = sandbox;
  runtime::v1::RunPodSandboxResponse ran;
  if (absl::Status s = cri_->Call("RunPodSandbox", &Stub::RunPodSandbox, run, &ran); !s.ok()) {
    return s;
  }
  sandboxes_.push_back(ran.pod_sandbox_id());

  runtime::v1::CreateContainerRequest create;
  create.set_pod_sandbox_id(ran.pod_sandbox_id());
  *create.mutable_sandbox_config() = sandbox;
  runtime::v1::ContainerConfig& config = *create.mutable_config();
  config.mutable_metadata()->set_name(pod.container);
  config.mutable_image()->set_image(kImage);
  for (const std::string& arg : pod.command) config.add_command(arg);
  config.mutable_labels()->insert(pod_labels.begin(), pod_labels.end());
  (*config.mutable_labels())["io.kubernetes.container.name"] = pod.container;
  runtime::v1::CreateContainerResponse created;
  if (absl::Status s = cri_->Call("CreateContainer", &Stub::CreateContainer, create, &created);
      !s.ok()) {
    return s;
  }
  runtime::v1::StartContainerRequest start;
  start.set_container_id(created.container_id());
  runtime::v1::StartContainerResponse started;
  if (absl::Status s = cri_->Call("StartContainer", &Stub::StartContainer, start, &started);
      !s.ok()) {
    return s;
  }

  // containerd's verbose status: {"info": "{... \"pid\": N ...}"}.
  runtime::v1::ContainerStatusRequest ask;
  ask.set_container_id(created.container_id());
  ask.set_verbose(true);
  runtime::v1::ContainerStatusResponse status;
  if (absl::Status s = cri_->Call("ContainerStatus", &Stub::ContainerStatus, ask, &status);
      !s.ok()) {
    return s;
  }
  const auto info = status.info().find("info");
  const nlohmann::json parsed = nlohmann::json::parse(
      info == status.info().end() ? "" : info->second, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("pid") || !parsed["pid"].is_number_integer()) {
    return absl::InternalError("ContainerStatus's verbose info has no pid");
  }
  return RunningPod{ran.pod_sandbox_id(), created.container_id(), parsed["pid"].get<pid_t>()};
}

void PrivateContainerd::RemovePods() {
  using Stub = runtime::v1::RuntimeService::Stub;
  for (const std::string& id : sandboxes_) {
    runtime::v1::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(id);
    runtime::v1::StopPodSandboxResponse stopped;
    cri_->Call("StopPodSandbox", &Stub::StopPodSandbox, stop, &stopped).IgnoreError();
    runtime::v1::RemovePodSandboxRequest remove;
    remove.set_pod_sandbox_id(id);
    runtime::v1::RemovePodSandboxResponse removed;
    cri_->Call("RemovePodSandbox", &Stub::RemovePodSandbox, remove, &removed).IgnoreError();
  }
  sandboxes_.clear();
}

PrivateContainerd::~PrivateContainerd() {
  if (pid_ > 0) {
    // The pods first: their shims and processes outlive containerd otherwise.
    if (cri_ != nullptr) RemovePods();
    kill(pid_, SIGTERM);
    if (!WaitUpTo(pid_, absl::Seconds(10)).has_value()) {
      kill(pid_, SIGKILL);
      WaitUpTo(pid_, absl::Seconds(10));
    }
  }
  RemoveCgroupTree(cgroup_root_);
  UnmountUnder(dir_);
  RemoveTree(dir_);
}

std::string PrivateContainerd::Log() const { return ReadFile(dir_ + "/containerd.log"); }

}  // namespace devscope
