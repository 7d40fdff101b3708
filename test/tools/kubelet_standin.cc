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
//
// With --commands it is driven from stdin instead, one command a line, one JSON line answering
// each, until "quit" or the end of stdin (test/packaging/deployment_test.sh):
//   wait RESOURCE COUNT SECONDS     as --resource: {"event":"registered",...}
//   admit RESOURCE COUNT NS/POD/CTR as --admit, the pod added to those admitted before:
//                                   {"event":"allocated",...,"calls":[the kubelet's calls]}
//   registrations                   {"event":"registrations","registrations":[...]}
// A command that fails answers {"event":"error",...} and the next one is read.
// --without-device-plugins serves no ROOT/device-plugins (a node whose kubelet has none).
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
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
  bool commands = false;
  bool without_device_plugins = false;
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

// Waits until `resource` has `count` healthy devices streamed, publishes them as allocatable and
// reports "registered". false (after reporting) on timeout.
bool WaitForPlugin(const std::string& resource, int count, int seconds,
                   RegistrationStandin& kubelet, PodResourcesStandin& lister) {
  const size_t wanted = std::max(count, 1);
  auto enough = [wanted](const std::vector<v1beta1::Device>& devices) {
    return std::count_if(devices.begin(), devices.end(), [](const v1beta1::Device& d) {
             return d.health() == "Healthy";
           }) >= static_cast<long>(wanted);
  };
  if (!kubelet.WaitForDevices(resource, enough, absl::Seconds(seconds))) {
    Struct f;
    (*f.mutable_fields())["error"] = StringValue("no registration with enough healthy devices");
    (*f.mutable_fields())["registrations"] = Registrations(kubelet);
    Report("error", std::move(f));
    return false;
  }
  const std::vector<v1beta1::Device> devices = kubelet.Devices(resource);
  v1::AllocatableResourcesResponse allocatable;
  Struct registered;
  Value& listed = (*registered.mutable_fields())["devices"];
  for (const v1beta1::Device& device : devices) {
    *listed.mutable_list_value()->add_values() = MessageValue(device);
    if (device.health() != "Healthy") continue;
    *allocatable.add_devices() = MakeDevices(resource, {device.id()}, NumaNodes(device));
  }
  (*registered.mutable_fields())["registrations"] = Registrations(kubelet);
  lister.SetAllocatable(allocatable);
  Report("registered", std::move(registered));
  return true;
}

// Admits a pod holding `count` devices of `resource` (pod: NAMESPACE/NAME/CONTAINER), adds it to
// `pods`, lists `pods` in pod-resources and reports "allocated" with the calls made. false (after
// reporting) when the plugin refused.
bool AdmitPod(const std::string& resource, int count, const std::string& pod,
              RegistrationStandin& kubelet, PodResourcesStandin& lister,
              std::vector<v1::PodResources>& pods) {
  const std::vector<std::string> names = absl::StrSplit(pod, '/');
  // The calls the kubelet makes follow what the plugin said when it registered.
  Value calls;
  calls.mutable_list_value();
  for (const RegistrationStandin::Registration& r : kubelet.Registrations()) {
    if (r.resource != resource || !r.accepted) continue;
    calls.mutable_list_value()->clear_values();
    if (r.options.get_preferred_allocation_available()) {
      *calls.mutable_list_value()->add_values() = StringValue("GetPreferredAllocation");
    }
    *calls.mutable_list_value()->add_values() = StringValue("Allocate");
    if (r.options.pre_start_required()) {
      *calls.mutable_list_value()->add_values() = StringValue("PreStartContainer");
    }
  }
  std::vector<std::string> ids;
  auto response = kubelet.Admit(resource, count, &ids);
  if (!response.ok()) {
    Struct f;
    (*f.mutable_fields())["error"] = StringValue(response.status().ToString());
    Report("error", std::move(f));
    return false;
  }
  std::vector<int64_t> numa;
  for (const v1beta1::Device& device : kubelet.Devices(resource)) {
    if (std::find(ids.begin(), ids.end(), device.id()) == ids.end()) continue;
    for (int64_t node : NumaNodes(device)) numa.push_back(node);
  }
  pods.push_back(
      MakePod(names[0], names[1], {MakeContainer(names[2], {MakeDevices(resource, ids, numa)})}));
  lister.SetPods(pods);
  Struct allocated;
  auto& f = *allocated.mutable_fields();
  for (const std::string& id : ids) {
    *f["ids"].mutable_list_value()->add_values() = StringValue(id);
  }
  f["namespace"] = StringValue(names[0]);
  f["pod"] = StringValue(names[1]);
  f["container"] = StringValue(names[2]);
  f["calls"] = calls;
  f["response"] = MessageValue(*response);
  Report("allocated", std::move(allocated));
  return true;
}

bool IsPod(const std::string& s) { return std::count(s.begin(), s.end(), '/') == 2; }

// The --commands loop: one command a line from stdin until "quit" or its end.
void RunCommands(RegistrationStandin* kubelet, PodResourcesStandin& lister) {
  std::vector<v1::PodResources> pods;
  std::string line;
  while (std::getline(std::cin, line)) {
    const std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.empty()) continue;
    if (words[0] == "quit") return;
    int count = 0, seconds = 0;
    auto error = [](const std::string& message) {
      Struct f;
      (*f.mutable_fields())["error"] = StringValue(message);
      Report("error", std::move(f));
    };
    if (kubelet == nullptr && words[0] != "registrations") {
      error("no device-plugins directory (--without-device-plugins)");
    } else if (words[0] == "registrations" && words.size() == 1) {
      Struct f;
      (*f.mutable_fields())["registrations"] =
          kubelet != nullptr ? Registrations(*kubelet) : Value();
      (*f.mutable_fields())["registrations"].mutable_list_value();
      Report("registrations", std::move(f));
    } else if (words[0] == "wait" && words.size() == 4 && absl::SimpleAtoi(words[2], &count) &&
               absl::SimpleAtoi(words[3], &seconds)) {
      WaitForPlugin(words[1], count, seconds, *kubelet, lister);
    } else if (words[0] == "admit" && words.size() == 4 && absl::SimpleAtoi(words[2], &count) &&
               IsPod(words[3])) {
      AdmitPod(words[1], count, words[3], *kubelet, lister, pods);
    } else {
      error("unknown command: " + line);
    }
  }
}

int Run(const Options& options) {
  // Directories this process creates are removed again on the way out (when empty).
  std::vector<fs::path> created;
  std::vector<std::string> subs = {"pod-resources"};
  if (!options.without_device_plugins) subs.push_back("device-plugins");
  for (const std::string& sub : subs) {
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
  // Before gRPC starts its threads. Driven by commands, a signal keeps its default: it ends the
  // process (no thread waits for it while stdin is read).
  if (!options.commands) pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  int status = 0;
  {
    auto lister = PodResourcesStandin::Start(
        (fs::path(options.root) / "pod-resources" / "kubelet.sock").string());
    std::unique_ptr<RegistrationStandin> kubelet;
    absl::Status started = lister.status();
    if (started.ok() && !options.without_device_plugins) {
      kubelet = std::make_unique<RegistrationStandin>();
      started = kubelet->Start((fs::path(options.root) / "device-plugins").string());
    }
    if (!started.ok()) {
      Struct f;
      (*f.mutable_fields())["error"] = StringValue(started.ToString());
      Report("error", std::move(f));
      status = 1;
    } else {
      Report("serving");
      std::vector<v1::PodResources> pods;
      if (options.commands) {
        RunCommands(kubelet.get(), **lister);
      } else if (!options.resource.empty() && kubelet != nullptr &&
                 (!WaitForPlugin(options.resource, options.admit, options.wait_seconds, *kubelet,
                                 **lister) ||
                  (options.admit > 0 && !AdmitPod(options.resource, options.admit, options.pod,
                                                  *kubelet, **lister, pods)))) {
        status = 1;
      }
      int signal = 0;
      if (status == 0 && !options.commands) sigwait(&signals, &signal);
      if (kubelet != nullptr) kubelet->Stop();
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
        return devscope::IsPod(s) ? "" : "want NAMESPACE/NAME/CONTAINER";
      });
  app.add_flag("--commands", options.commands,
               "driven by commands on stdin (wait, admit, registrations, quit) instead")
      ->excludes("--resource");
  app.add_flag("--without-device-plugins", options.without_device_plugins,
               "serve no ROOT/device-plugins (a node whose kubelet has none)");
  app.add_option("--wait-seconds", options.wait_seconds, "how long to wait for the plugin")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return devscope::Run(options);
}
