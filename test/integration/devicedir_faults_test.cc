// The devicedir side, through the real binary (issue 12, items 5 and 6 and its log rule): the
// devicedir deleted and recreated; a collector that hangs for ever (an open(2) that never returns,
// from an LD_PRELOAD shim: hang_open.c); a devicedir that would hand pods host files (refused,
// counted, logged once); and log lines that quote bytes from a devicedir file, in logfmt and JSON.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  for (const absl::Time deadline = absl::Now() + timeout; absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(20))) {
    if (done()) return true;
  }
  return done();
}

void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points
// above U+10FFFF).
bool IsUtf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = text[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > text.size() || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4)) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return false;
    }
    const unsigned char c1 = n > 1 ? text[i + 1] : 0;
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
        (c == 0xf4 && c1 > 0x8f)) {
      return false;
    }
    i += n;
  }
  return true;
}

class DevicedirFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    devices_ = dir_ + "/devices";
    WriteDevice("w0");
    // Passes every second, so that the tests see changes the periodic pass finds quickly.
    WriteText(dir_ + "/config.yaml", "collectors:\n  interval: 1s\n");
  }
  void TearDown() override {
    devscope_.reset();
    RemoveTree(dir_);
  }

  void WriteDevice(const std::string& id) {
    WriteText(absl::StrCat(devices_, "/", id, "/resource"), "example.com/widget\n");
    WriteText(absl::StrCat(devices_, "/", id, "/allocate"), "device /dev/null /dev/widget rw\n");
  }

  void StartDevscope(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) {
    std::vector<std::string> args = {"--web.listen-address=127.0.0.1:0",
                                     "--kubelet.pod-resources-socket=" + dir_ + "/kubelet.sock",
                                     "--no-device-plugin",
                                     "--config.file=" + dir_ + "/config.yaml",
                                     "--collector.devicedir.path=" + devices_,
                                     owner_flag_,
                                     "--no-collector.nvml",
                                     "--no-collector.drm",
                                     "--no-collector.netdev"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = DevscopeProcess::Start(args, absl::Seconds(20), std::move(env));
    ASSERT_TRUE(process.ok()) << process.status();
    devscope_ = *std::move(process);
  }

  std::string Scrape() {
    const HttpResponse response = devscope_->HttpGet("/metrics");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(PromtoolCheck(response.body), "");
    return response.body;
  }
  double Metric(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    auto samples = FindSamples(devscope_->HttpGet("/metrics").body, name, labels);
    return samples.empty() ? -1 : samples[0].value;
  }
  bool HasDevice(const std::string& id) {
    return !FindSamples(devscope_->HttpGet("/metrics").body, "devscope_device_info",
                        {{"device", id}})
                .empty();
  }
  double CollectorUp() { return Metric("devscope_collector_up", {{"collector", "devicedir"}}); }

  std::string dir_;
  std::string devices_;
  std::string owner_flag_ = DevicedirOwnerFlag();
  std::unique_ptr<DevscopeProcess> devscope_;
};

TEST_F(DevicedirFaultsTest, DeletedAndRecreated) {
  ASSERT_NO_FATAL_FAILURE(StartDevscope());
  ASSERT_TRUE(WaitUntil([&] { return HasDevice("w0"); }, absl::Seconds(10)));
  RemoveTree(devices_);
  // Down, and the last devices kept until collectors.stale_after (a minute).
  ASSERT_TRUE(WaitUntil([&] { return CollectorUp() == 0; }, absl::Seconds(5)));
  EXPECT_TRUE(HasDevice("w0"));
  WriteDevice("w1");
  const absl::Time back = absl::Now();
  ASSERT_TRUE(WaitUntil([&] { return HasDevice("w1") && CollectorUp() == 1; }, absl::Seconds(5)))
      << devscope_->Stderr();
  std::printf("devicedir recreated -> devices served: %s\n",
              absl::FormatDuration(absl::Now() - back).c_str());
  EXPECT_FALSE(HasDevice("w0"));
  EXPECT_THAT(devscope_->Stderr(), HasSubstr("usable again"));
  EXPECT_EQ(devscope_->Stop(), 0);
}

// A collector that never returns: the watchdog marks it down after its deadline (the interval),
// scrapes are not delayed, and SIGTERM still ends the process within 1 s: the stuck thread is the
// one thing not joined (CollectorRunner::Stop).
TEST_F(DevicedirFaultsTest, ACollectorThatHangsForEver) {
  ASSERT_NO_FATAL_FAILURE(StartDevscope(
      {}, {absl::StrCat("LD_PRELOAD=", HANG_OPEN_LIBRARY), "DEVSCOPE_TEST_HANG_OPEN=stuck0"}));
  ASSERT_TRUE(WaitUntil([&] { return HasDevice("w0") && CollectorUp() == 1; }, absl::Seconds(10)));
  WriteDevice("stuck0");  // the next pass opens stuck0 and never comes back
  ASSERT_TRUE(WaitUntil([&] { return CollectorUp() == 0; }, absl::Seconds(5)))
      << devscope_->Stderr();
  const absl::Time start = absl::Now();
  const std::string body = Scrape();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_FALSE(FindSamples(body, "devscope_device_info", {{"device", "w0"}}).empty());
  EXPECT_THAT(devscope_->Stderr(), HasSubstr("overran its deadline"));
  EXPECT_EQ(devscope_->HttpGet("/healthz").status, 200);

  const absl::Time stop = absl::Now();
  const int status = devscope_->Stop(absl::Seconds(5));
  const absl::Duration took = absl::Now() - stop;
  std::printf("SIGTERM with a collector stuck -> exit %d after %s\n", status,
              absl::FormatDuration(took).c_str());
  EXPECT_EQ(status, 0) << devscope_->Stderr();
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_THAT(devscope_->Stderr(), HasSubstr("collector stuck in a pass at shutdown"));
}

// Issue 12: a world-writable allocate file whose `device /dev/../etc/passwd` line went to the
// kubelet. Such a device is refused, counted in devscope_collector_parse_errors and logged once;
// the others are served.
TEST_F(DevicedirFaultsTest, AnUntrustedDeviceIsRefusedCountedAndLoggedOnce) {
  WriteDevice("w1");
  WriteText(devices_ + "/w1/allocate", "device /dev/../etc/passwd /dev/x rw\n");
  WriteDevice("w2");
  ASSERT_EQ(chmod((devices_ + "/w2/allocate").c_str(), 0666), 0);
  ASSERT_NO_FATAL_FAILURE(StartDevscope());
  ASSERT_TRUE(WaitUntil([&] { return HasDevice("w0"); }, absl::Seconds(10)));
  absl::SleepFor(absl::Seconds(3));  // three more passes
  const std::string body = Scrape();
  EXPECT_FALSE(FindSamples(body, "devscope_device_info", {{"device", "w0"}}).empty());
  EXPECT_TRUE(FindSamples(body, "devscope_device_info", {{"device", "w1"}}).empty());
  EXPECT_TRUE(FindSamples(body, "devscope_device_info", {{"device", "w2"}}).empty());
  const auto errors =
      FindSamples(body, "devscope_collector_parse_errors", {{"collector", "devicedir"}});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].value, 2);
  const std::string log = devscope_->Stderr();
  for (const char* why : {"is not a canonical path under /dev", "writable by group or others"}) {
    EXPECT_THAT(log, HasSubstr(why));
    EXPECT_EQ(log.find(why), log.rfind(why)) << "logged more than once: " << why;
  }
  // Fixed: served at the next pass.
  ASSERT_EQ(chmod((devices_ + "/w2/allocate").c_str(), 0644), 0);
  EXPECT_TRUE(WaitUntil([&] { return HasDevice("w2"); }, absl::Seconds(5)));
}

TEST_F(DevicedirFaultsTest, RefusedWithoutTheOwnerOptionUnlessRoot) {
  // The default owner is root: a devicedir of this test's user is refused unless the user is root.
  owner_flag_ = "--collector.devicedir.owner=root";
  ASSERT_NO_FATAL_FAILURE(StartDevscope());
  if (geteuid() == 0) {
    EXPECT_TRUE(WaitUntil([&] { return HasDevice("w0"); }, absl::Seconds(10)));
  } else {
    EXPECT_TRUE(WaitUntil([&] { return CollectorUp() == 0; }, absl::Seconds(10)));
    EXPECT_THAT(devscope_->Stderr(), HasSubstr("not by root"));
  }
}

// Every line of `log` in `format`: valid UTF-8, no control bytes, bounded; JSON lines parse.
void CheckLogLines(const std::string& log, const std::string& format) {
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    const std::string text(line);
    EXPECT_TRUE(IsUtf8(text)) << text;
    for (unsigned char c : text) EXPECT_GE(c, 0x20) << text;
    EXPECT_LT(text.size(), 2000u) << text;
    if (format == "json") {
      EXPECT_TRUE(nlohmann::json::accept(text)) << text;
    } else {
      EXPECT_TRUE(absl::StartsWith(text, "ts=")) << text;
    }
  }
}

TEST_F(DevicedirFaultsTest, LogLinesEscapeAndBoundWhatTheyQuote) {
  WriteText(devices_ + "/bad/resource", "bad\xff\xfe\x01name\n");
  std::mt19937 random(12);
  std::string noise(20000, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  WriteText(devices_ + "/noise/resource", noise);
  WriteText(devices_ + "/noise2/resource", "example.com/widget\n");
  WriteText(devices_ + "/noise2/metrics.prom", noise);
  WriteText(devices_ + "/noise2/allocate", noise);
  for (const std::string format : {"logfmt", "json"}) {
    ASSERT_NO_FATAL_FAILURE(StartDevscope({"--log.format=" + format}));
    ASSERT_TRUE(
        WaitUntil([&] { return devscope_->Stderr().find("devices/noise:") != std::string::npos; },
                  absl::Seconds(10)))
        << devscope_->Stderr();
    EXPECT_EQ(devscope_->Stop(), 0);
    const std::string log = devscope_->Stderr();
    CheckLogLines(log, format);
    // The message as a log reader decodes it shows the bytes as \xNN.
    bool found = false;
    for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
      if (!absl::StrContains(line, "devices/bad")) continue;
      const absl::string_view key = format == "json" ? "\"msg\":" : "msg=";
      const size_t at = line.find(key);
      ASSERT_NE(at, absl::string_view::npos) << line;
      std::string quoted(line.substr(at + key.size()));
      if (format == "json") quoted.pop_back();  // the closing }
      const std::string msg = nlohmann::json::parse(quoted).get<std::string>();
      EXPECT_THAT(msg, HasSubstr("resource name \"bad\\xff\\xfe\\x01name\""));
      found = true;
    }
    EXPECT_TRUE(found) << log;
  }
}

}  // namespace
}  // namespace devscope
