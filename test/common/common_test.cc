// The shared helpers: durations and sizes of the command line, and the bounded file reader.
#include <stdlib.h>

#include <fstream>
#include <string>

#include "common/files.h"
#include "common/units.h"
#include "gtest/gtest.h"

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
  char dir[] = "/tmp/dscommonXXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string small = std::string(dir) + "/small";
  const std::string big = std::string(dir) + "/big";
  std::ofstream(small) << "  42\n";
  std::ofstream(big) << std::string(20000, 'x');
  EXPECT_EQ(*ReadSmallFile(small), "  42\n");
  EXPECT_EQ(*ReadTrimmed(small), "42");
  EXPECT_EQ(ReadSmallFile(big, 20000)->size(), 20000u);
  EXPECT_EQ(ReadSmallFile(big, 19999).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ReadSmallFile(std::string(dir) + "/absent").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(ReadTrimmed(std::string(dir) + "/absent").has_value());
  EXPECT_EQ(ListDirectory(dir), (std::vector<std::string>{"big", "small"}));
  EXPECT_TRUE(ListDirectory(std::string(dir) + "/absent").empty());
}

}  // namespace
}  // namespace devscope
