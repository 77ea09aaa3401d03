// The shipped conf.d/flis-data-areas.toml (contract §4), loaded the way the default
// configuration loads it: included from a main file.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/config_testing.h"

namespace fordeler {
namespace {

TEST(FlisDataAreas, TheShippedFileDefinesTheFiveDataAreasOfTheContract) {
  testing::TempDir dir;
  std::string main = dir.Write(
      "fordeler.toml", std::string("include = [\"") + FORDELER_SOURCE_DIR + "/conf.d/*.toml\"]\n");
  LoadResult r = LoadConfig(main);
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  struct Area {
    const char* id;
    const char* name;
    const char* deliver;
    const char* fetch;
  };
  const Area kExpected[] = {
      {"oekonomi", "Økonomi", "FLISOekonomiAflever_1", "FLISOekonomiHent_1"},
      {"personale", "Personale", "FLISPersonaleAflever_1", "FLISPersonaleHent_1"},
      {"skole", "Skole", "FLISSkoleAflever_1", "FLISSkoleHent_1"},
      {"dagtilbud", "Dagtilbud", "FLISDagtilbudAflever_1", "FLISDagtilbudHent_1"},
      {"voksne-handicappede", "Voksne og Handicappede", "FLISVoksneOgHandicappedeAflever_1",
       "FLISVoksneOgHandicappedeHent_1"},
  };
  ASSERT_EQ(r.config->data_areas.size(), std::size(kExpected));
  for (const Area& want : kExpected) {
    const DataArea* got = r.config->FindDataArea(want.id);
    ASSERT_NE(got, nullptr) << want.id;
    EXPECT_EQ(got->name, want.name);
    EXPECT_EQ(got->deliver_service, want.deliver);
    EXPECT_EQ(got->fetch_service, want.fetch);
    EXPECT_EQ(got->where.file, std::string(FORDELER_SOURCE_DIR) + "/conf.d/flis-data-areas.toml");
  }
}

TEST(FlisDataAreas, RedefiningAShippedDataAreaIsRefused) {
  testing::TempDir dir;
  std::string main = dir.Write(
      "fordeler.toml", std::string("include = [\"") + FORDELER_SOURCE_DIR +
                           "/conf.d/*.toml\"]\n[[data_area]]\nid = \"skole\"\nname = \"Skole 2\"\n"
                           "deliver_service = \"X\"\nfetch_service = \"Y\"\n");
  LoadResult r = LoadConfig(main);
  ASSERT_EQ(r.errors.size(), 1u) << testing::Describe(r.errors);
  // The main file's entries are read before the included files'.
  EXPECT_EQ(r.errors[0].where.file,
            std::string(FORDELER_SOURCE_DIR) + "/conf.d/flis-data-areas.toml");
  EXPECT_NE(
      r.errors[0].message.find("data area id \"skole\" is defined twice (first at " + main + ":2)"),
      std::string::npos)
      << r.errors[0].message;
}

}  // namespace
}  // namespace fordeler
