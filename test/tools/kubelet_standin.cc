// kubelet_standin: the kubelet stand-in (demo/) as a process of its own, for tests that run
// devscope somewhere this test process cannot reach with a function call: under systemd in a booted
// container (test/packaging/deb_systemd_test.sh) or under a container runtime. It serves the
// kubelet's two sockets below a kubelet root directory, the way the kubelet lays them out:
//
//   ROOT/pod-resources/kubelet.sock    v1.PodResourcesLister
//   ROOT/device-plugins/kubelet.sock   v1beta1.Registration (plugins' sockets beside it)
//
// With --resource it waits until a device plugin has registered that resource and streamed enough
// healthy devices, then (with --admit) admits one pod through the plugin (GetPreferredAllocation,
// Allocate, PreStartContainer) and lists that pod in pod-resources. It reports each step on stdout
// as one JSON object per line and serves until SIGTERM or SIGINT; on the way out it removes its
// sockets and the directories it created. Exit status: 0 after a clean stop, 1 when a step failed
// (reported as {"event":"error",...}), 2 for a bad command line.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "demo/standin_pod_resources.h"
#include "demo/standin_registration.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;
using google::protobuf::Struct;
using google::protobuf::Value;

struct Options {
  std::string root;
  std::string resource;
  int admit = 0;
  std::string pod = "default/standin-pod/main";  // NAMESPACE/NAME/CONTAINER
  int wait_seconds = 60;
};

Value StringValue(const std::string& s) {
  Value v;
  v.set_string_value(s);
  return v;
}

// A protobuf message as a JSON value (field names as in the proto, defaults included).
Value MessageValue(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  Value value;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok() ||
      !google::protobuf::util::JsonStringToMessage(json, &value).ok()) {
    return StringValue("<unprintable " + message.GetTypeName() + ">");
  }
  return value;
}

// One line of JSON on stdout: {"event": EVENT, ...fields}.
void Report(const std::string& event, Struct fields = {}) {
  (*fields.mutable_fields())["event"] = StringValue(event);
  std::string line;
  if (!google::protobuf::util::MessageToJsonString(fields, &line).ok()) line = "{}";
  std::cout << line << std::endl;
}

Value Registrations(const RegistrationStandin& kubelet) {
  Value list;
  for (const RegistrationStandin::Registration& r : kubelet.Registrations()) {
    Struct entry;
    auto& f = *entry.mutable_fields();
    f["version"] = StringValue(r.version);
    f["endpoint"] = StringValue(r.endpoint);
    f["resource"] = StringValue(r.resource);
    f["options"] = MessageValue(r.options);
    f["accepted"].set_bool_value(r.accepted);
    f["error"] = StringValue(r.error);
    *list.mutable_list_value()->add_values()->mutable_struct_value() = std::move(entry);
  }
  return list;
}

std::vector<int64_t> NumaNodes(const v1beta1::Device& device) {
  std::vector<int64_t> nodes;
  for (const auto& node : device.topology().nodes()) nodes.push_back(node.id());
  return nodes;
}

// Waits for the plugin, admits the pod, and publishes it. false (after reporting) on failure.
bool AdmitPod(const Options& options, RegistrationStandin& kubelet, PodResourcesStandin& lister) {
  const size_t wanted = std::max(options.admit, 1);
  auto enough = [wanted](const std::vector<v1beta1::Device>& devices) {
    return std::count_if(devices.begin(), devices.end(), [](const v1beta1::Device& d) {
             return d.health() == "Healthy";
           }) >= static_cast<long>(wanted);
  };
  if (!kubelet.WaitForDevices(options.resource, enough, absl::Seconds(options.wait_seconds))) {
    Struct f;
    (*f.mutable_fields())["error"] = StringValue("no registration with enough healthy devices");
    (*f.mutable_fields())["registrations"] = Registrations(kubelet);
    Report("error", std::move(f));
    return false;
  }
  const std::vector<v1beta1::Device> devices = kubelet.Devices(options.resource);
  v1::AllocatableResourcesResponse allocatable;
  Struct registered;
  Value& listed = (*registered.mutable_fields())["devices"];
  for (const v1beta1::Device& device : devices) {
    *listed.mutable_list_value()->add_values() = MessageValue(device);
    if (device.health() != "Healthy") continue;
    *allocatable.add_devices() = MakeDevices(options.resource, {device.id()}, NumaNodes(device));
  }
  (*registered.mutable_fields())["registrations"] = Registrations(kubelet);
  lister.SetAllocatable(allocatable);
  Report("registered", std::move(registered));
  if (options.admit == 0) return true;

  const std::vector<std::string> pod = absl::StrSplit(options.pod, '/');
  std::vector<std::string> ids;
  auto response = kubelet.Admit(options.resource, options.admit, &ids);
  if (!response.ok()) {
    Struct f;
    (*f.mutable_fields())["error"] = StringValue(response.status().ToString());
    Report("error", std::move(f));
    return false;
  }
  std::vector<int64_t> numa;
  for (const v1beta1::Device& device : devices) {
    if (std::find(ids.begin(), ids.end(), device.id()) == ids.end()) continue;
    for (int64_t node : NumaNodes(device)) numa.push_back(node);
  }
  lister.SetPods({MakePod(pod[0], pod[1],
                          {MakeContainer(pod[2], {MakeDevices(options.resource, ids, numa)})})});
  Struct allocated;
  auto& f = *allocated.mutable_fields();
  for (const std::string& id : ids) {
    *f["ids"].mutable_list_value()->add_values() = StringValue(id);
  }
  f["namespace"] = StringValue(pod[0]);
  f["pod"] = StringValue(pod[1]);
  f["container"] = StringValue(pod[2]);
  f["response"] = MessageValue(*response);
  Report("allocated", std::move(allocated));
  return true;
}

int Run(const Options& options) {
  // Directories this process creates are removed again on the way out (when empty).
  std::vector<fs::path> created;
  for (const char* sub : {"pod-resources", "device-plugins"}) {
    fs::path dir = fs::path(options.root) / sub;
    std::vector<fs::path> missing;
    for (fs::path p = dir; !p.empty() && !fs::exists(p); p = p.parent_path()) missing.push_back(p);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      std::cerr << "kubelet_standin: cannot create " << dir << ": " << ec.message() << "\n";
      return 1;
    }
    created.insert(created.end(), missing.begin(), missing.end());
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before gRPC starts its threads

  int status = 0;
  {
    auto lister = PodResourcesStandin::Start(
        (fs::path(options.root) / "pod-resources" / "kubelet.sock").string());
    RegistrationStandin kubelet;
    absl::Status started = lister.ok()
                               ? kubelet.Start((fs::path(options.root) / "device-plugins").string())
                               : lister.status();
    if (!started.ok()) {
      Struct f;
      (*f.mutable_fields())["error"] = StringValue(started.ToString());
      Report("error", std::move(f));
      status = 1;
    } else {
      Report("serving");
      if (!options.resource.empty() && !AdmitPod(options, kubelet, **lister)) status = 1;
      int signal = 0;
      if (status == 0) sigwait(&signals, &signal);
      kubelet.Stop();
      (*lister)->Stop();
    }
  }
  // Deepest first; a directory someone else put files into stays.
  for (const fs::path& dir : created) {
    std::error_code ec;
    fs::remove(dir, ec);
  }
  Report("stopped");
  return status;
}

}  // namespace
}  // namespace devscope

int main(int argc, char** argv) {
  devscope::Options options;
  CLI::App app{
      "The kubelet stand-in as a process: serves ROOT/pod-resources/kubelet.sock and "
      "ROOT/device-plugins/kubelet.sock; reports on stdout as JSON lines"};
  app.add_option("--root", options.root, "kubelet root directory (/var/lib/kubelet)")->required();
  app.add_option("--resource", options.resource, "wait for a plugin to register this resource");
  app.add_option("--admit", options.admit, "admit a pod holding this many devices of --resource")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--pod", options.pod, "the admitted pod, NAMESPACE/NAME/CONTAINER")
      ->check([](const std::string& s) {
        return std::count(s.begin(), s.end(), '/') == 2 ? "" : "want NAMESPACE/NAME/CONTAINER";
      });
  app.add_option("--wait-seconds", options.wait_seconds, "how long to wait for the plugin")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return devscope::Run(options);
}
