#include "core/uuid.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fordeler {
namespace {

TEST(Uuid, MatchesTheExampleOfRfc9562) {
  // RFC 9562 appendix A.6: 2022-02-22 19:22:22 UTC, rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F.
  // Our rand_a is the millisecond's fraction: 797,608 ns is 3267/4096 = 0xCC3 of it.
  const int64_t nanos = 0x017F22E279B0LL * 1'000'000 + 797'608;
  const uint8_t random[8] = {0x98, 0xC4, 0xDC, 0x0C, 0x0C, 0x07, 0x39, 0x8F};
  EXPECT_EQ(MakeUuidV7(nanos, random), "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
}

TEST(Uuid, SetsVersionAndVariantWhateverTheRandomBytes) {
  const uint8_t ones[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const uint8_t zeros[8] = {};
  EXPECT_EQ(MakeUuidV7(0, zeros), "00000000-0000-7000-8000-000000000000");
  EXPECT_EQ(MakeUuidV7(999'999, ones), "00000000-0000-7fff-bfff-ffffffffffff");
}

TEST(Uuid, CarriesTheTimeInItsFirstFortyEightBits) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  std::string uuid = NewUuid();
  auto leading = std::stoll(uuid.substr(0, 8) + uuid.substr(9, 4), nullptr, 16);
  EXPECT_GE(leading, millis);
  EXPECT_LT(leading, millis + 60'000);
}

TEST(Uuid, NewOnesAreValidLowercaseVersionSevenAndSortInTheOrderMade) {
  std::string previous;
  for (int i = 0; i < 20'000; ++i) {
    std::string uuid = NewUuid();
    ASSERT_TRUE(IsUuid(uuid)) << uuid;
    ASSERT_EQ(uuid[14], '7') << uuid;
    ASSERT_NE(std::string("89ab").find(uuid[19]), std::string::npos) << uuid;
    for (char c : uuid) ASSERT_FALSE(c >= 'A' && c <= 'F') << uuid;
    ASSERT_LT(previous, uuid) << "made after " << previous;
    previous = uuid;
  }
}

TEST(Uuid, ThreadsMakingThemAtOnceGetDistinctOnes) {
  constexpr int kThreads = 4;
  constexpr int kEach = 5'000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&made, t] {
      for (int i = 0; i < kEach; ++i) made[t].push_back(NewUuid());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> all;
  for (const auto& list : made) {
    for (size_t i = 1; i < list.size(); ++i) ASSERT_LT(list[i - 1], list[i]);
    all.insert(list.begin(), list.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
}

TEST(Uuid, TellsWhenAVersionSevenOneWasMade) {
  auto made = TimeOfUuid("017F22E2-79B0-7CC3-98C4-DC0C0C07398F");
  ASSERT_TRUE(made.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(made->time_since_epoch()).count(),
            0x017F22E279B0LL);  // 2022-02-22 19:22:22.000 UTC
  EXPECT_FALSE(TimeOfUuid("4e392c70-314b-40c6-bad0-998dc359be25").has_value());  // version 4
  EXPECT_FALSE(TimeOfUuid("not a uuid").has_value());
}

TEST(Uuid, RecognisesTheCanonicalFormOnly) {
  EXPECT_TRUE(IsUuid("017f22e2-79b0-7cc3-98c4-dc0c0c07398f"));
  EXPECT_TRUE(IsUuid("017F22E2-79B0-7CC3-98C4-DC0C0C07398F"));
  EXPECT_FALSE(IsUuid("017f22e279b07cc398c4dc0c0c07398f"));
  EXPECT_FALSE(IsUuid("017f22e2-79b0-7cc3-98c4-dc0c0c07398"));
  EXPECT_FALSE(IsUuid("017f22e2-79b0-7cc3-98c4-dc0c0c07398g"));
  EXPECT_FALSE(IsUuid("017f22e2+79b0-7cc3-98c4-dc0c0c07398f"));
}

}  // namespace
}  // namespace fordeler
