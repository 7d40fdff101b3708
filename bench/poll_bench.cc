// The cost of one pod-resources poll at 250 pods x 4 containers x 4 devices: the List call over
// the stand-in's unix socket plus the conversion into a PodResourcesSnapshot, as the poller does
// it. BM_ListRpcOnly (the bare call) is the reference, so results read as ratios that hold across
// machines; BM_ConvertOnly isolates the conversion.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "demo/standin_pod_resources.h"
#include "grpcpp/grpcpp.h"
#include "kubelet/convert.h"
#include "kubelet/grpc_pod_resources_client.h"
#include "kubelet/pod_resources.h"
#include "podresources/v1/api.grpc.pb.h"

namespace devscope {
namespace {

constexpr int kPods = 250;
constexpr int kContainers = 4;
constexpr int kDevices = 4;

// One stand-in for the whole binary (started on first use), with the rate limit off so that the
// benchmark measures the call, not the kubelet's bucket.
struct Fixture {
  std::string dir;
  std::unique_ptr<PodResourcesStandin> standin;
  std::unique_ptr<v1::PodResourcesLister::Stub> stub;

  Fixture() {
    char tmpl[] = "/tmp/dsbench-XXXXXX";
    dir = mkdtemp(tmpl);
    auto started = PodResourcesStandin::Start(dir + "/kubelet.sock");
    if (!started.ok()) std::abort();
    standin = *std::move(started);
    standin->SetRateLimit(0, 0);
    // GPU-style IDs (40 characters) on two NUMA nodes.
    standin->SetPods(MakeFleet(kPods, kContainers, kDevices, 40));
    stub =
        v1::PodResourcesLister::NewStub(MakePodResourcesChannel(standin->socket_path(), 64 << 20));
  }
  ~Fixture() {
    standin->Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  v1::ListPodResourcesResponse List() {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListPodResourcesResponse response;
    grpc::Status status = stub->List(&context, v1::ListPodResourcesRequest(), &response);
    if (!status.ok()) std::abort();
    return response;
  }
};

Fixture& TheFixture() {
  static Fixture* fixture = new Fixture();  // lives until exit, like the process's kubelet
  return *fixture;
}

void BM_ListRpcOnly(benchmark::State& state) {
  Fixture& f = TheFixture();
  size_t bytes = 0;
  for (auto _ : state) {
    v1::ListPodResourcesResponse response = f.List();
    bytes = response.ByteSizeLong();
    benchmark::DoNotOptimize(response);
  }
  state.counters["reply_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ListRpcOnly)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

void BM_PollListAndConvert(benchmark::State& state) {
  Fixture& f = TheFixture();
  for (auto _ : state) {
    v1::ListPodResourcesResponse response = f.List();
    auto snapshot = std::make_shared<PodResourcesSnapshot>();
    snapshot->pods = ConvertPods(response);
    snapshot->list_time = absl::Now();
    benchmark::DoNotOptimize(snapshot);
  }
  state.counters["pods"] = kPods;
  state.counters["devices"] = kPods * kContainers * kDevices;
}
BENCHMARK(BM_PollListAndConvert)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

void BM_ConvertOnly(benchmark::State& state) {
  const v1::ListPodResourcesResponse response = TheFixture().List();
  for (auto _ : state) {
    std::vector<PodResources> pods = ConvertPods(response);
    benchmark::DoNotOptimize(pods);
  }
}
BENCHMARK(BM_ConvertOnly)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

}  // namespace
}  // namespace devscope
