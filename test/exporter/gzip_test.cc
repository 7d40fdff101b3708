#include "exporter/gzip.h"

#include <zlib.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

// zlib's own gzip reader, which checks the trailer's CRC-32 and length; nullopt-like "" plus
// false on any error, including bytes after the end of the member.
bool Gunzip(const std::string& gz, std::string& out) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) return false;
  out.clear();
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  stream.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  char buffer[65536];
  while (rc == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    rc = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - stream.avail_out);
  }
  const bool whole = rc == Z_STREAM_END && stream.avail_in == 0;
  inflateEnd(&stream);
  return whole;
}

std::string Exposition(size_t series, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::string text =
      "# HELP devscope_device_power_watts Power.\n# TYPE devscope_device_power_watts gauge\n";
  for (size_t i = 0; i < series; ++i) {
    absl::StrAppend(&text, "devscope_device_power_watts{resource=\"example.com/widget\",device=\"w",
                    i, "\",namespace=\"ml\",pod=\"trainer-", i % 250, "\"} ", random() % 100000,
                    ".5\n");
  }
  return text;
}

TEST(GzipTest, PrefixAndRestMakeOneValidMember) {
  std::string binary;
  for (int i = 0; i < 3 * 256; ++i) binary.push_back(static_cast<char>(i % 256));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},
      {"devscope_build_info 1\n", ""},
      {"", "devscope_pod_resources_up 1\n"},
      {Exposition(12000, 1), Exposition(40, 2)},  // the node probe's size: about 1.4 MB
      {binary, binary},
  };
  for (const auto& [prefix_text, rest] : cases) {
    const GzipPrefix prefix = GzipBegin(prefix_text);
    ASSERT_FALSE(prefix.bytes.empty());
    const std::string gz = prefix.bytes + GzipEnd(prefix, rest);
    std::string out;
    ASSERT_TRUE(Gunzip(gz, out)) << prefix_text.size() << " + " << rest.size();
    EXPECT_EQ(out, prefix_text + rest);
  }
}

TEST(GzipTest, OnePrefixServesManyRests) {
  const std::string stable = Exposition(2000, 3);
  const GzipPrefix prefix = GzipBegin(stable);
  for (int scrape = 0; scrape < 5; ++scrape) {
    const std::string fresh = absl::StrCat("devscope_pod_resources_requests_total ", scrape, "\n");
    std::string out;
    ASSERT_TRUE(Gunzip(prefix.bytes + GzipEnd(prefix, fresh), out));
    EXPECT_EQ(out, stable + fresh);
  }
  // And it is compressed: exposition text shrinks several times over.
  EXPECT_LT(prefix.bytes.size() * 4, stable.size());
}

TEST(GzipTest, ATamperedTrailerIsCaughtByTheReader) {
  // The check above is only worth something if the reader checks the CRC: prove it does.
  const GzipPrefix prefix = GzipBegin("abc");
  std::string gz = prefix.bytes + GzipEnd(prefix, "def");
  gz[gz.size() - 8] ^= 1;
  std::string out;
  EXPECT_FALSE(Gunzip(gz, out));
}

}  // namespace
}  // namespace devscope
