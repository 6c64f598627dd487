#include "cli/args.h"

#include <gtest/gtest.h>

#include "../cli/test_argv.h"

namespace zerotune {
namespace {

using testing::Argv;

Args sample_args() {
  Args args("zerotune demo", "A demo command.");
  args.option("--count|-c", "N", "how many", "5")
      .option("--name", "NAME", "who")
      .option("--rate", "R", "how fast", "0.5")
      .flag("--verbose", "talk");
  return args;
}

TEST(Args, ParsesValuesSpellingsAndDefaults) {
  Args args = sample_args();
  Argv argv({"-c", "7", "--name=ada", "--verbose"});
  ASSERT_TRUE(args.parse(argv.argc(), argv.data(), 1));
  EXPECT_EQ(args.get_int("--count"), 7);
  EXPECT_EQ(args.get("--name"), "ada");
  EXPECT_TRUE(args.has("--verbose"));
  EXPECT_FALSE(args.has("--rate"));
  EXPECT_DOUBLE_EQ(args.get_double("--rate"), 0.5);  // the declared default
}

TEST(Args, RepeatedFlagKeepsEveryValueInOrder) {
  Args args = sample_args();
  Argv argv({"--name", "a=x", "--name=b=s3://bucket/y", "-c", "3"});
  ASSERT_TRUE(args.parse(argv.argc(), argv.data(), 1));
  EXPECT_EQ(args.get_all("--name"), (std::vector<std::string>{"a=x", "b=s3://bucket/y"}));
  EXPECT_EQ(args.get("--name"), "b=s3://bucket/y");  // get() keeps the last
  EXPECT_EQ(args.get_all("-c"), std::vector<std::string>{"3"});
  EXPECT_TRUE(args.get_all("--rate").empty());  // a default is not a value given
}

TEST(Args, RefusesBadArgumentsNamingThem) {
  auto parse = [](std::vector<std::string> flags) {
    Args args = sample_args();
    Argv argv(std::move(flags));
    args.parse(argv.argc(), argv.data(), 1);
  };
  EXPECT_EQ(error_of([&] { parse({"--bogus"}); }),
            "zerotune demo: unknown argument '--bogus' (see zerotune demo --help)");
  EXPECT_EQ(error_of([&] { parse({"--count"}); }), "zerotune demo: --count needs a value (N)");
  EXPECT_EQ(error_of([&] { parse({"--verbose=1"}); }), "zerotune demo: --verbose takes no value");
}

TEST(Args, RefusesNumbersItCannotHold) {
  Args args = sample_args();
  Argv argv({"--count", "99999999999999999999", "--rate", "fast"});
  ASSERT_TRUE(args.parse(argv.argc(), argv.data(), 1));
  EXPECT_EQ(error_of([&] { args.get_int("--count"); }),
            "zerotune demo: --count expects an integer, got '99999999999999999999'");
  EXPECT_EQ(error_of([&] { args.get_double("--rate"); }),
            "zerotune demo: --rate expects a number, got 'fast'");
  EXPECT_EQ(error_of([&] { args.require("--name"); }),
            "zerotune demo: --name is required (see zerotune demo --help)");
}

TEST(Args, AcceptsAliasesAndRefusesASpellingDeclaredTwice) {
  Args args("zerotune demo", "");
  Args::Spec spec;
  spec.names = {"--model_name"};
  spec.aliases = {"--model-name"};
  spec.value_name = "DIR";
  args.add(spec);
  Argv argv({"--model-name", "m"});
  ASSERT_TRUE(args.parse(argv.argc(), argv.data(), 1));
  EXPECT_EQ(args.get("--model_name"), "m");
  EXPECT_EQ(args.get("--model-name"), "m");  // the same flag under either spelling

  EXPECT_NE(error_of([&] { args.option("--model-name", "X", "again"); }).find("twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { args.flag("--x|", "an empty spelling"); }).find("empty"),
            std::string::npos);
}

TEST(Args, HelpShowsSpellingsDefaultsNotesAndAliases) {
  Args args = sample_args();
  Args::Spec spec;
  spec.names = {"--model_name"};
  spec.aliases = {"--model-name"};
  spec.value_name = "DIR|s3://B/P|OWNER/NAME";
  spec.help = "the model";
  spec.notes = {"required", "as the Python job"};
  args.add(spec);
  const std::string help = args.help();
  EXPECT_NE(help.find("  --count, -c N                   how many (default: 5)\n"),
            std::string::npos)
      << help;
  EXPECT_NE(help.find("  --verbose                       talk\n"), std::string::npos) << help;
  // A spellings column wider than the flag column puts the help on its own line.
  EXPECT_NE(help.find("  --model_name DIR|s3://B/P|OWNER/NAME\n" + std::string(34, ' ') +
                      "the model (required; as the Python job; alias --model-name)\n"),
            std::string::npos)
      << help;
  EXPECT_EQ(testing::count_entries(help, "  --model_name"), 1);
  EXPECT_EQ(help.find("--model-name"), help.rfind("--model-name"));  // named once, as the alias
}

}  // namespace
}  // namespace zerotune
