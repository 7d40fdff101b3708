// The shared helpers: durations and sizes of the command line, the bounded file reader, PCI
// addresses, label-name rules and warn-once.
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/files.h"
#include "common/label_names.h"
#include "common/pci_address.h"
#include "common/snapshot_store.h"
#include "common/units.h"
#include "common/warn_once.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

TEST(UnitsTest, Durations) {
  EXPECT_EQ(*ParsePositiveDuration("1s"), absl::Seconds(1));
  EXPECT_EQ(*ParsePositiveDuration("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParsePositiveDuration("2m30s"), absl::Seconds(150));
  for (const char* bad : {"", "1", "0s", "-1s", "soon", "1 s", "inf"}) {
    EXPECT_FALSE(ParsePositiveDuration(bad).ok()) << bad;
  }
}

TEST(UnitsTest, Sizes) {
  EXPECT_EQ(*ParseByteSize("64MiB"), 64u << 20);
  EXPECT_EQ(*ParseByteSize("16MB"), 16000000u);
  EXPECT_EQ(*ParseByteSize("1KiB"), 1024u);
  EXPECT_EQ(*ParseByteSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseByteSize("10B"), 10u);
  for (const char* bad : {"", "MiB", "0", "-1MiB", "1.5MiB", "12XB", "99999999999999999999GiB"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
}

TEST(FilesTest, BoundedReads) {
  TempDir dir;
  const std::string small = dir.Path("small");
  const std::string big = dir.Path("big");
  std::ofstream(small) << "  42\n";
  std::ofstream(big) << std::string(20000, 'x');
  EXPECT_EQ(*ReadSmallFile(small), "  42\n");
  EXPECT_EQ(*ReadTrimmed(small), "42");
  EXPECT_EQ(ReadSmallFile(big, 20000)->size(), 20000u);
  EXPECT_EQ(ReadSmallFile(big, 19999).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ReadSmallFile(dir.Path("absent")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(ReadTrimmed(dir.Path("absent")).has_value());
  EXPECT_EQ(ListDirectory(dir.path()), (std::vector<std::string>{"big", "small"}));
  EXPECT_TRUE(ListDirectory(dir.Path("absent")).empty());
}

TEST(PciAddressTest, OneCanonicalForm) {
  EXPECT_EQ(NormalizePciAddress("00000000:3B:00.0"), "0000:3b:00.0");  // NVML's
  EXPECT_EQ(NormalizePciAddress("0000:3b:00.1"), "0000:3b:00.1");      // sysfs'
  EXPECT_EQ(NormalizePciAddress("3b:00.7"), "0000:3b:00.7");
  EXPECT_EQ(NormalizePciAddress("1:3b:00.0"), "0001:3b:00.0");
  EXPECT_EQ(NormalizePciAddress("0001A:3b:00.0"), "001a:3b:00.0");
  EXPECT_EQ(NormalizePciAddress("10000:3b:00.0"), std::nullopt);  // a domain over 4 digits
  for (const char* bad : {"", "GPU-abc", "card0", "3b:00.8", "3b:0.0", "zz:00.0", "0000:3b:00"}) {
    EXPECT_EQ(NormalizePciAddress(bad), std::nullopt) << bad;
  }
}

TEST(LabelNamesTest, ReservedDeviceLabels) {
  for (const char* name : {"resource", "device", "namespace", "pod", "container"}) {
    EXPECT_TRUE(IsReservedDeviceLabel(name)) << name;
  }
  EXPECT_FALSE(IsReservedDeviceLabel("kind"));
  EXPECT_FALSE(IsReservedDeviceLabel("devices"));
}

TEST(WarnOnceTest, OncePerKeyAndAgainAfterItWentAway) {
  WarnOnce warn("test: ");
  EXPECT_TRUE(warn.Warn("a", "problem a"));
  EXPECT_FALSE(warn.Warn("a", "problem a"));
  EXPECT_TRUE(warn.Warn("b", "problem b"));
  warn.ForgetAbsent();  // a pass that saw a and b
  EXPECT_FALSE(warn.Warn("a", "problem a"));
  warn.ForgetAbsent();  // a pass that saw only a: b went away
  EXPECT_FALSE(warn.Warn("a", "problem a"));
  EXPECT_TRUE(warn.Warn("b", "problem b"));
}

TEST(SnapshotStoreTest, ListenersHearEachPublishUntilTheirSubscriptionGoes) {
  SnapshotStore<int> store;
  int heard = 0;
  auto subscription = std::make_unique<SnapshotStore<int>::Subscription>(
      store.Subscribe([&] { heard += *store.Current(); }));
  store.Publish(std::make_shared<const int>(1));
  store.Publish(std::make_shared<const int>(10));
  EXPECT_EQ(heard, 11);
  SnapshotStore<int>::Subscription moved = std::move(*subscription);
  subscription.reset();  // a moved-from subscription ends nothing
  store.Publish(std::make_shared<const int>(100));
  EXPECT_EQ(heard, 111);
  moved.Reset();
  store.Publish(std::make_shared<const int>(1000));
  EXPECT_EQ(heard, 111);
  EXPECT_EQ(store.Version(), 4u);
}

TEST(ClockTest, TheRealClockWaitsForItsDeadlineOrTheStop) {
  Clock& clock = Clock::Real();
  absl::Notification stop;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(clock.WaitUntil(stop, clock.Now() + absl::Milliseconds(20)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  EXPECT_EQ(clock.PollTimeout(clock.Now() - absl::Seconds(1)), absl::ZeroDuration());
  EXPECT_GT(clock.PollTimeout(clock.Now() + absl::Seconds(1)), absl::Milliseconds(900));
  stop.Notify();
  EXPECT_TRUE(clock.WaitUntil(stop, clock.Now() + absl::Hours(1)));
}

TEST(ClockTest, AFakeClockMovesOnlyWhenAdvanced) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(clock.Now(), start);
  EXPECT_EQ(clock.NextDeadline(), absl::InfiniteFuture());

  absl::Notification stop;
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    EXPECT_FALSE(clock.WaitUntil(stop, start + absl::Minutes(5)));
    woke = true;
  });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_EQ(clock.NextDeadline(), start + absl::Minutes(5));
  EXPECT_EQ(clock.PollTimeout(start + absl::Minutes(5)), absl::Milliseconds(2));
  clock.Advance(absl::Minutes(4));
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_FALSE(woke);
  clock.Advance(absl::Minutes(1));
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(clock.Now(), start + absl::Minutes(5));
  EXPECT_EQ(clock.PollTimeout(start + absl::Minutes(5)), absl::ZeroDuration());
  EXPECT_FALSE(clock.AwaitWaiters(1, absl::Milliseconds(10)));

  std::thread stopped([&] { EXPECT_TRUE(clock.WaitUntil(stop, clock.Now() + absl::Hours(1))); });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  stop.Notify();
  stopped.join();
}

}  // namespace
}  // namespace devscope
