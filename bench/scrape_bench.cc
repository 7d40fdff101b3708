// The cost of rendering /metrics in process, at the size the performance issue names
// (bench/node_fixture.h: 250 pods x 4 containers x 4 devices, 1,024 of them tracked with 6
// telemetry samples each; about 12.2k series, 1.6 MB).
//
//  - FromScratch: a renderer with no history renders the view (join, every section, no gzip);
//  - AfterPodChange: a pod arrived, holding a tracked device (new pod-resources snapshot, same
//    devices): the pod-resources view and the blocks whose holders changed are rendered, the rest
//    copied;
//  - AfterTelemetryChange: a collector pass with new values (new device snapshot, same pods);
//  - ..._Gzip: the same, plus the gzip of the view as Prometheus asks for it (only changed pieces
//    are compressed);
//  - Cached: nothing changed;
//  - ReferenceCopy: copying the same bytes into a buffer: the floor any renderer pays, the
//    reference the others are read against ("render at the speed of writing bytes").
// Each reports the bytes and the allocations per iteration: every malloc, calloc and realloc
// (operator new and zlib's included), counted by this binary, which puts its own counting malloc
// in front of glibc's.
#include <atomic>
#include <memory>
#include <string>

#include "bench/node_fixture.h"
#include "benchmark/benchmark.h"
#include "exporter/metrics_renderer.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// glibc's allocator under its own names; defining malloc here puts this binary's first for every
// library it loads. free and the aligned forms stay glibc's: the same allocator underneath.
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* p, size_t size);
void* malloc(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, size);
}
void* realloc(void* p, size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, size);
}
}

namespace devscope {
namespace {

struct Node {
  SnapshotStore<PodResourcesSnapshot> pods;
  SnapshotStore<DeviceSnapshot> devices;
  MetricsRenderer renderer{&pods, &devices, {}};
  Node(std::shared_ptr<const PodResourcesSnapshot> p = BenchPodsSnapshot(),
       std::shared_ptr<const DeviceSnapshot> d = BenchDeviceSnapshot()) {
    pods.Publish(std::move(p));
    devices.Publish(std::move(d));
  }
};

void Report(benchmark::State& state, uint64_t allocations, size_t bytes) {
  state.counters["allocs"] =
      benchmark::Counter(static_cast<double>(allocations), benchmark::Counter::kAvgIterations);
  state.counters["bytes"] = static_cast<double>(bytes);
}

// Renders after `change`, which alternates between two snapshots so that each iteration renders.
template <typename Change>
void RenderAfter(benchmark::State& state, Change change, bool gzip) {
  Node node;
  node.renderer.RenderParts().stable->Gzip();
  uint64_t allocations = 0;
  size_t bytes = 0;
  int i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    change(node, i++);
    state.ResumeTiming();
    const uint64_t before = g_allocations.load(std::memory_order_relaxed);
    const Exposition parts = node.renderer.RenderParts();
    if (gzip) benchmark::DoNotOptimize(parts.stable->Gzip().bytes.size());
    allocations += g_allocations.load(std::memory_order_relaxed) - before;
    bytes = parts.stable->text().size();
  }
  Report(state, allocations, bytes);
}

void AfterPodChange(benchmark::State& state, bool gzip) {
  // One pod more, then one fewer: each a new pod-resources snapshot.
  const auto base = BenchPodsSnapshot();
  const auto more = BenchPodsSnapshot(1);
  RenderAfter(
      state,
      [&](Node& node, int i) {
        node.pods.Publish(std::make_shared<PodResourcesSnapshot>(i % 2 ? *base : *more));
      },
      gzip);
}

void AfterTelemetryChange(benchmark::State& state, bool gzip) {
  const auto a = BenchDeviceSnapshot(0.5);
  const auto b = BenchDeviceSnapshot(0.25);
  RenderAfter(
      state,
      [&](Node& node, int i) {
        node.devices.Publish(std::make_shared<DeviceSnapshot>(i % 2 ? *a : *b));
      },
      gzip);
}

void FromScratch(benchmark::State& state) {
  const auto pods = BenchPodsSnapshot();
  const auto devices = BenchDeviceSnapshot();
  uint64_t allocations = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto renderer = std::make_unique<Node>(pods, devices);
    state.ResumeTiming();
    const uint64_t before = g_allocations.load(std::memory_order_relaxed);
    bytes = renderer->renderer.RenderParts().stable->text().size();
    allocations += g_allocations.load(std::memory_order_relaxed) - before;
    state.PauseTiming();
    renderer.reset();
    state.ResumeTiming();
  }
  Report(state, allocations, bytes);
}

void Cached(benchmark::State& state) {
  Node node;
  node.renderer.RenderParts();
  for (auto _ : state) benchmark::DoNotOptimize(node.renderer.RenderParts().stable->text().size());
}

void ReferenceCopy(benchmark::State& state) {
  Node node;
  const std::string text = node.renderer.RenderParts().stable->text();
  std::string copy;
  copy.reserve(text.size());
  for (auto _ : state) {
    copy.assign(text);
    benchmark::DoNotOptimize(copy.data());
  }
  Report(state, 0, text.size());
}

BENCHMARK(ReferenceCopy)->Unit(benchmark::kMillisecond);
BENCHMARK(FromScratch)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(AfterPodChange, text, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(AfterPodChange, gzip, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(AfterTelemetryChange, text, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(AfterTelemetryChange, gzip, true)->Unit(benchmark::kMillisecond);
BENCHMARK(Cached)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace devscope
