// Device plugin latency at 1,024 devices over the real unix socket, against the registration
// stand-in: Allocate and GetPreferredAllocation, with GetDevicePluginOptions (an empty round trip)
// as the reference to divide by. Also the time a health change takes to reach the kubelet's
// ListAndWatch stream, and the time to re-register after a kubelet restart (manual time).
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "collectors/collector.h"
#include "common/log.h"
#include "common/snapshot_store.h"
#include "demo/standin_registration.h"
#include "deviceplugin/plugin_manager.h"
#include "deviceplugin/plugin_options.h"
#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "prometheus/registry.h"

namespace devscope {
namespace {

constexpr char kResource[] = "example.com/widget";
constexpr int kDevices = 1024;
constexpr int kNumaNodes = 4;

std::string DeviceId(int i) { return absl::StrCat("w", i); }

// One plugin manager serving 1,024 devices, registered with the stand-in; built once.
class Env {
 public:
  Env() {
    char dir_template[] = "/tmp/dpbXXXXXX";
    dir_ = mkdtemp(dir_template);
    (void)ConfigureLogging(LogOptions{.level = "error"});
    options_.device_plugins_dir = dir_;
    if (!standin_.Start(dir_).ok()) std::abort();
    Publish(-1);
    manager_ = std::make_unique<DevicePluginManager>(options_, store_, registry_);
    if (!manager_->Start().ok()) std::abort();
    if (!WaitHealthy(-1)) std::abort();
    stub_ = v1beta1::DevicePlugin::NewStub(
        grpc::CreateChannel(absl::StrCat("unix:", manager_->SocketPath(kResource)),
                            grpc::InsecureChannelCredentials()));
  }
  ~Env() {
    manager_->Stop();
    standin_.Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Publishes all devices healthy except `unhealthy` (-1: none).
  void Publish(int unhealthy) {
    auto snapshot = std::make_shared<DeviceSnapshot>();
    CollectorReport report;
    report.collector = "devicedir";
    report.up = true;
    for (int i = 0; i < kDevices; ++i) {
      DeviceReport device;
      device.info.id = DeviceId(i);
      device.info.resource = kResource;
      device.info.advertise = true;
      device.info.numa_node = i % kNumaNodes;
      device.info.allocate.device_nodes.push_back({absl::StrCat("/dev/widget", i), "", ""});
      device.info.allocate.envs.push_back({"WIDGET_VISIBLE_DEVICES", DeviceId(i)});
      device.info.allocate.cdi_devices.push_back(absl::StrCat("example.com/widget=", DeviceId(i)));
      device.health.healthy = i != unhealthy;
      report.devices.push_back(std::move(device));
    }
    snapshot->collectors.push_back(std::move(report));
    store_.Publish(std::move(snapshot));
  }

  bool WaitHealthy(int unhealthy) {
    return standin_.WaitForDevices(
        kResource,
        [unhealthy](const std::vector<v1beta1::Device>& devices) {
          if (devices.size() != kDevices) return false;
          for (int i = 0; i < kDevices; ++i) {
            if ((devices[i].health() == "Healthy") != (i != unhealthy)) return false;
          }
          return true;
        },
        absl::Seconds(5));
  }

  size_t Registrations() { return standin_.Registrations().size(); }

  RegistrationStandin& standin() { return standin_; }
  v1beta1::DevicePlugin::Stub& stub() { return *stub_; }

 private:
  std::string dir_;
  PluginOptions options_;
  SnapshotStore<DeviceSnapshot> store_;
  prometheus::Registry registry_;
  RegistrationStandin standin_;
  std::unique_ptr<DevicePluginManager> manager_;
  std::unique_ptr<v1beta1::DevicePlugin::Stub> stub_;
};

Env& GetEnv() {
  static Env env;
  return env;
}

void BM_GetDevicePluginOptions(benchmark::State& state) {
  auto& stub = GetEnv().stub();
  for (auto _ : state) {
    grpc::ClientContext context;
    v1beta1::DevicePluginOptions options;
    if (!stub.GetDevicePluginOptions(&context, v1beta1::Empty(), &options).ok()) {
      state.SkipWithError("GetDevicePluginOptions failed");
    }
  }
}
BENCHMARK(BM_GetDevicePluginOptions)->UseRealTime();

void BM_Allocate(benchmark::State& state) {
  auto& stub = GetEnv().stub();
  v1beta1::AllocateRequest request;
  auto* container = request.add_container_requests();
  for (int i = 0; i < state.range(0); ++i) container->add_devices_ids(DeviceId(i * 7 % kDevices));
  for (auto _ : state) {
    grpc::ClientContext context;
    v1beta1::AllocateResponse response;
    if (!stub.Allocate(&context, request, &response).ok()) state.SkipWithError("Allocate failed");
  }
}
BENCHMARK(BM_Allocate)->Arg(1)->Arg(8)->UseRealTime();

void BM_GetPreferredAllocation(benchmark::State& state) {
  auto& stub = GetEnv().stub();
  v1beta1::PreferredAllocationRequest request;
  auto* container = request.add_container_requests();
  for (int i = 0; i < kDevices; ++i) container->add_available_deviceids(DeviceId(i));
  container->add_must_include_deviceids(DeviceId(5));
  container->set_allocation_size(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    grpc::ClientContext context;
    v1beta1::PreferredAllocationResponse response;
    if (!stub.GetPreferredAllocation(&context, request, &response).ok()) {
      state.SkipWithError("GetPreferredAllocation failed");
    }
  }
}
BENCHMARK(BM_GetPreferredAllocation)->Arg(1)->Arg(8)->UseRealTime();

// From Publish of a health flip to the stand-in (the kubelet's stream) holding the new list.
void BM_HealthPropagation(benchmark::State& state) {
  Env& env = GetEnv();
  int flip = 0;
  for (auto _ : state) {
    int unhealthy = (flip++ % 2 == 0) ? 3 : -1;
    absl::Time t0 = absl::Now();
    env.Publish(unhealthy);
    if (!env.WaitHealthy(unhealthy)) state.SkipWithError("health change not seen");
    state.SetIterationTime(absl::ToDoubleSeconds(absl::Now() - t0));
  }
  env.Publish(-1);
  env.WaitHealthy(-1);
}
BENCHMARK(BM_HealthPropagation)->UseManualTime()->Iterations(50);

// From the stand-in's Restart (sockets deleted, kubelet.sock anew) to the next Register received.
void BM_ReRegisterAfterKubeletRestart(benchmark::State& state) {
  Env& env = GetEnv();
  for (auto _ : state) {
    size_t before = env.Registrations();
    absl::Time t0 = absl::Now();
    if (!env.standin().Restart().ok()) state.SkipWithError("restart failed");
    absl::Time deadline = t0 + absl::Seconds(5);
    while (env.Registrations() == before && absl::Now() < deadline) {
      absl::SleepFor(absl::Microseconds(200));
    }
    auto registrations = env.standin().Registrations();
    if (registrations.size() == before || !registrations.back().accepted) {
      state.SkipWithError("no re-registration");
      break;
    }
    state.SetIterationTime(absl::ToDoubleSeconds(registrations.back().time - t0));
    env.WaitHealthy(-1);
  }
}
BENCHMARK(BM_ReRegisterAfterKubeletRestart)->UseManualTime()->Iterations(20);

}  // namespace
}  // namespace devscope
