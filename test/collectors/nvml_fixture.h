// The nvml collector's tests against the fake libnvidia-ml (test/collectors/fake_nvml): the fake's
// scenario API, resolved with dlsym() from the same dlopen() handle the collector gets (one path,
// one instance), and helpers to collect and find samples.
#ifndef DEVSCOPE_TEST_COLLECTORS_NVML_FIXTURE_H_
#define DEVSCOPE_TEST_COLLECTORS_NVML_FIXTURE_H_

#include <dlfcn.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "collectors/node_roots.h"
#include "collectors/nvml.h"
#include "collectors/nvml_api.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {

// The fake's scenario API (test/collectors/fake_nvml/*.c say what each does).
struct FakeNvml {
  void (*reset)();
  void (*set_init_result)(int);
  int (*add_gpu)(const char*, const char*, const char*);
  int (*add_mig)(int, const char*, const char*, unsigned);
  int (*set_compute_instance)(int, unsigned);
  int (*set)(int, const char*, unsigned long long);
  int (*fail)(int, const char*, int);
  void (*set_serial)(int, const char*);
  void (*set_lost)(int, int);
  void (*inject_xid)(int, unsigned long long, unsigned);
  int (*registered)(int);
  int (*init_calls)();
  int (*shutdown_calls)();
  int (*event_sets_open)();
  void (*set_driver_version)(const char*, int);
  void (*set_nvlink)(int, unsigned, int);
  int (*set_nvlink_counter)(int, unsigned, const char*, unsigned long long);
  void (*add_process)(int, int, unsigned, unsigned long long);
  void (*add_process_sample)(int, unsigned, unsigned long long, unsigned, unsigned, unsigned,
                             unsigned);
  unsigned long long (*last_seen)(int);
};

class NvmlFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenFake(FAKE_NVML_LIBRARY);
    roots_.sysfs = root_ + "/sys";
    roots_.devfs = root_ + "/dev";
    options_.mig_minors_file = root_ + "/proc/driver/nvidia-caps/mig-minors";
    std::filesystem::create_directories(roots_.devfs);
  }

  void TearDown() override {
    if (handle_ != nullptr) dlclose(handle_);
  }

  // Drives the fake at `library` (a fresh scenario) and points the collector at it.
  void OpenFake(const char* library) {
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << dlerror();
    options_.library = library;
    Resolve("fake_nvml_reset", fake_.reset);
    Resolve("fake_nvml_set_init_result", fake_.set_init_result);
    Resolve("fake_nvml_add_gpu", fake_.add_gpu);
    Resolve("fake_nvml_add_mig", fake_.add_mig);
    Resolve("fake_nvml_set_compute_instance", fake_.set_compute_instance);
    Resolve("fake_nvml_set", fake_.set);
    Resolve("fake_nvml_fail", fake_.fail);
    Resolve("fake_nvml_set_serial", fake_.set_serial);
    Resolve("fake_nvml_set_lost", fake_.set_lost);
    Resolve("fake_nvml_inject_xid", fake_.inject_xid);
    Resolve("fake_nvml_registered", fake_.registered);
    Resolve("fake_nvml_init_calls", fake_.init_calls);
    Resolve("fake_nvml_shutdown_calls", fake_.shutdown_calls);
    Resolve("fake_nvml_event_sets_open", fake_.event_sets_open);
    Resolve("fake_nvml_set_driver_version", fake_.set_driver_version);
    Resolve("fake_nvml_set_nvlink", fake_.set_nvlink);
    Resolve("fake_nvml_set_nvlink_counter", fake_.set_nvlink_counter);
    Resolve("fake_nvml_add_process", fake_.add_process);
    Resolve("fake_nvml_add_process_sample", fake_.add_process_sample);
    Resolve("fake_nvml_last_seen", fake_.last_seen);
    fake_.reset();
  }

  template <typename Fn>
  void Resolve(const char* name, Fn& fn) {
    fn = reinterpret_cast<Fn>(dlsym(handle_, name));
    ASSERT_NE(fn, nullptr) << name;
  }

  std::unique_ptr<Collector> Make() {
    auto collector = NewNvmlCollector(options_, roots_);
    EXPECT_TRUE(collector.ok()) << collector.status();
    return collector.ok() ? std::move(*collector) : nullptr;
  }

  static std::vector<DeviceReport> Collect(Collector& collector) {
    auto reports = collector.Collect();
    EXPECT_TRUE(reports.ok()) << reports.status();
    return reports.ok() ? *reports : std::vector<DeviceReport>{};
  }

  // Collects until `done` holds for the reports, or 10 s pass.
  static std::vector<DeviceReport> CollectUntil(
      Collector& collector, const std::function<bool(const std::vector<DeviceReport>&)>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::vector<DeviceReport> reports = Collect(collector);
    while (!done(reports) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      reports = Collect(collector);
    }
    return reports;
  }

  void* handle_ = nullptr;
  FakeNvml fake_{};
  TempDir dir_;
  const std::string root_ = dir_.path();
  NvmlOptions options_;
  NodeRoots roots_;
};

inline const DeviceReport* Find(const std::vector<DeviceReport>& reports, const std::string& id) {
  for (const DeviceReport& report : reports) {
    if (report.info.id == id) return &report;
  }
  return nullptr;
}

// The value of the sample `name` with exactly `labels`; nullopt when absent.
inline std::optional<double> Value(const DeviceReport& report, const std::string& name,
                                   const LabelPairs& labels = {}) {
  for (const Sample& sample : report.samples) {
    if (sample.name == name && sample.labels == labels) return sample.value;
  }
  return std::nullopt;
}

// Whether any sample is named `name`, whatever its labels.
inline bool Has(const DeviceReport& report, const std::string& name) {
  for (const Sample& sample : report.samples) {
    if (sample.name == name) return true;
  }
  return false;
}

}  // namespace devscope

#endif  // DEVSCOPE_TEST_COLLECTORS_NVML_FIXTURE_H_
