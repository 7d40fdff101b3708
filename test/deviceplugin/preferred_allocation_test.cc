#include "deviceplugin/preferred_allocation.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// numa: ID -> node; IDs absent have no node.
NumaLookup Numa(std::map<std::string, int64_t> numa) {
  return [numa](const std::string& id) -> std::optional<int64_t> {
    auto it = numa.find(id);
    if (it == numa.end()) return std::nullopt;
    return it->second;
  };
}

std::set<int64_t> NodesOf(const std::vector<std::string>& ids, const NumaLookup& numa) {
  std::set<int64_t> nodes;
  for (const auto& id : ids) nodes.insert(numa(id).value_or(-1));
  return nodes;
}

TEST(NaturalLessTest, NumbersCompareAsNumbers) {
  EXPECT_TRUE(NaturalLess("w2", "w10"));
  EXPECT_FALSE(NaturalLess("w10", "w2"));
  EXPECT_TRUE(NaturalLess("a", "b"));
  EXPECT_TRUE(NaturalLess("w1", "w1a"));
  EXPECT_FALSE(NaturalLess("w1", "w1"));
  EXPECT_TRUE(NaturalLess("card0-1", "card0-10"));
}

TEST(PreferredAllocationTest, MustIncludeAlwaysInAnswer) {
  auto numa = Numa({{"a0", 0}, {"a1", 0}, {"b0", 1}, {"b1", 1}, {"b2", 1}});
  // b0 is required; the rest must come from node 1 first (no further node).
  auto got = PreferredAllocation({"a0", "a1", "b0", "b1", "b2"}, {"b0"}, 2, numa,
                                 AllocationPolicy::kPack);
  EXPECT_THAT(got, ElementsAre("b0", "b1"));
  // Even a must-include ID missing from available is kept.
  got = PreferredAllocation({"a0", "a1"}, {"zz"}, 2, numa, AllocationPolicy::kPack);
  EXPECT_THAT(got, ElementsAre("zz", "a0"));
  // allocation_size smaller than must-include: all of must-include.
  got = PreferredAllocation({"a0", "a1"}, {"a0", "a1"}, 1, numa, AllocationPolicy::kPack);
  EXPECT_THAT(got, ElementsAre("a0", "a1"));
}

TEST(PreferredAllocationTest, PicksOnlyFromAvailable) {
  auto numa = Numa({{"a0", 0}, {"a1", 0}, {"a2", 0}});
  auto got = PreferredAllocation({"a2", "a0"}, {}, 2, numa, AllocationPolicy::kPack);
  EXPECT_THAT(got, UnorderedElementsAre("a0", "a2"));
  // Too few: all that are available (advice, never an error).
  got = PreferredAllocation({"a2"}, {}, 3, numa, AllocationPolicy::kPack);
  EXPECT_THAT(got, ElementsAre("a2"));
}

TEST(PreferredAllocationTest, FewestNumaNodes) {
  // node 0: 2 free, node 1: 3 free, node 2: 1 free. Three devices fit only in node 1.
  auto numa = Numa({{"a0", 0}, {"a1", 0}, {"b0", 1}, {"b1", 1}, {"b2", 1}, {"c0", 2}});
  std::vector<std::string> all = {"a0", "a1", "b0", "b1", "b2", "c0"};
  for (auto policy : {AllocationPolicy::kPack, AllocationPolicy::kSpread}) {
    auto got = PreferredAllocation(all, {}, 3, numa, policy);
    EXPECT_THAT(got, UnorderedElementsAre("b0", "b1", "b2"));
    // Five need two nodes at least: 1 and 0.
    got = PreferredAllocation(all, {}, 5, numa, policy);
    EXPECT_EQ(got.size(), 5u);
    EXPECT_EQ(NodesOf(got, numa), (std::set<int64_t>{0, 1}));
  }
}

TEST(PreferredAllocationTest, PackFillsTheFullestNodeThatFits) {
  // node 0: 4 free, node 1: 2 free (more used). Pack takes node 1, spread node 0.
  auto numa = Numa({{"a0", 0}, {"a1", 0}, {"a2", 0}, {"a3", 0}, {"b0", 1}, {"b1", 1}});
  std::vector<std::string> all = {"a0", "a1", "a2", "a3", "b0", "b1"};
  EXPECT_THAT(PreferredAllocation(all, {}, 1, numa, AllocationPolicy::kPack), ElementsAre("b0"));
  EXPECT_THAT(PreferredAllocation(all, {}, 2, numa, AllocationPolicy::kPack),
              ElementsAre("b0", "b1"));
  EXPECT_THAT(PreferredAllocation(all, {}, 1, numa, AllocationPolicy::kSpread), ElementsAre("a0"));
  EXPECT_THAT(PreferredAllocation(all, {}, 2, numa, AllocationPolicy::kSpread),
              ElementsAre("a0", "a1"));
  // Three fit only in node 0 either way.
  EXPECT_THAT(PreferredAllocation(all, {}, 3, numa, AllocationPolicy::kPack),
              ElementsAre("a0", "a1", "a2"));
}

TEST(PreferredAllocationTest, SpreadAlternatesWhenSeveralNodesAreNeeded) {
  auto numa = Numa({{"a0", 0}, {"a1", 0}, {"a2", 0}, {"b0", 1}, {"b1", 1}, {"b2", 1}});
  std::vector<std::string> all = {"a0", "a1", "a2", "b0", "b1", "b2"};
  auto spread = PreferredAllocation(all, {}, 4, numa, AllocationPolicy::kSpread);
  EXPECT_THAT(spread, UnorderedElementsAre("a0", "a1", "b0", "b1"));
  auto pack = PreferredAllocation(all, {}, 4, numa, AllocationPolicy::kPack);
  EXPECT_THAT(pack, UnorderedElementsAre("a0", "a1", "a2", "b0"));
}

TEST(PreferredAllocationTest, MustIncludeNodeIsFilledFirst) {
  // must-include a0 on node 0 (1 other free there); node 1 has 4 free. Size 2: a1 joins it.
  auto numa = Numa({{"a0", 0}, {"a1", 0}, {"b0", 1}, {"b1", 1}, {"b2", 1}, {"b3", 1}});
  std::vector<std::string> all = {"a0", "a1", "b0", "b1", "b2", "b3"};
  for (auto policy : {AllocationPolicy::kPack, AllocationPolicy::kSpread}) {
    EXPECT_THAT(PreferredAllocation(all, {"a0"}, 2, numa, policy), ElementsAre("a0", "a1"));
    auto got = PreferredAllocation(all, {"a0"}, 4, numa, policy);
    EXPECT_EQ(got.front(), "a0");
    EXPECT_EQ(NodesOf(got, numa), (std::set<int64_t>{0, 1}));
  }
}

TEST(PreferredAllocationTest, DevicesWithoutNodeAreAGroupChosenLast) {
  auto numa = Numa({{"a0", 0}, {"a1", 0}});
  std::vector<std::string> all = {"x0", "x1", "a0", "a1"};  // x*: no NUMA node
  EXPECT_THAT(PreferredAllocation(all, {}, 2, numa, AllocationPolicy::kPack),
              ElementsAre("a0", "a1"));
  EXPECT_THAT(PreferredAllocation(all, {}, 2, numa, AllocationPolicy::kSpread),
              ElementsAre("a0", "a1"));
}

TEST(PreferredAllocationTest, NaturalOrderWithinANode) {
  auto numa = Numa({{"w10", 0}, {"w2", 0}, {"w1", 0}});
  EXPECT_THAT(PreferredAllocation({"w10", "w2", "w1"}, {}, 2, numa, AllocationPolicy::kPack),
              ElementsAre("w1", "w2"));
}

TEST(PreferredAllocationTest, DuplicatesAndZeroSize) {
  auto numa = Numa({{"a0", 0}});
  EXPECT_THAT(PreferredAllocation({"a0", "a0"}, {}, 2, numa, AllocationPolicy::kPack),
              ElementsAre("a0"));
  EXPECT_TRUE(PreferredAllocation({"a0"}, {}, 0, numa, AllocationPolicy::kPack).empty());
}

}  // namespace
}  // namespace devscope
