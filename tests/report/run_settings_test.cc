// The settings a run's report shows: every training option under its first spelling, flags as
// yes/no by whether they are in effect, options not given as their default's description.
#include "report/run_settings.h"

#include <gtest/gtest.h>

#include <map>

#include "train/train_options.h"

namespace zerotune::report {
namespace {

TEST(ReportSettings, EveryTrainingOptionWithItsEffectiveValue) {
  TrainOptions o;
  o.output_dir = "runs/<a>";
  o.lr = 3e-3;
  o.shuffle = false;          // --no-shuffle given
  o.layout = Layout::packed;  // --packing given
  o.zero_stage = 2;
  const NamedValues settings = option_settings(o);
  const std::map<std::string, std::string> by_name(settings.begin(), settings.end());
  EXPECT_EQ(by_name.size(), settings.size()) << "an option listed twice";
  EXPECT_EQ(by_name.at("--output_dir"), "runs/<a>");  // escaped by the page, not here
  EXPECT_EQ(by_name.at("--lr"), "0.003");
  EXPECT_EQ(by_name.at("--no-shuffle"), "yes");
  EXPECT_EQ(by_name.at("--packing"), "yes");
  EXPECT_EQ(by_name.at("--pad-to-longest"), "no");
  EXPECT_EQ(by_name.at("--no-grad-ckpt"), "no");
  EXPECT_EQ(by_name.at("--resume"), "no");
  EXPECT_EQ(by_name.at("--zero-stage"), "2");
  EXPECT_EQ(by_name.at("--batch-size-per-device"), "16");
  EXPECT_EQ(by_name.at("--save-dtype"), "(the input config's)");  // not given
  o.save_dtype_given = true;
  o.save_dtype = DType::bf16;
  o.grad_ckpt = false;
  const NamedValues given = option_settings(o);
  const std::map<std::string, std::string> given_by_name(given.begin(), given.end());
  EXPECT_EQ(given_by_name.at("--save-dtype"), "bf16");
  EXPECT_EQ(given_by_name.at("--no-grad-ckpt"), "yes");
}

}  // namespace
}  // namespace zerotune::report
