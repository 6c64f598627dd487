// The generic option visitors (cli/options.h, cli/option_rules.h) on a struct that has one option
// of every kind they handle.
#include "cli/options.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "../cli/test_argv.h"

namespace zerotune {
namespace {

using testing::Argv;

enum class Color : uint8_t { red, green, blue };
constexpr opt::EnumName<Color> kColorNames[] = {
    {"red", Color::red}, {"green", Color::green}, {"blue", Color::blue}};
[[maybe_unused]] std::span<const opt::EnumName<Color>> enum_names(Color) {
  return kColorNames;
}

enum class Mode : uint8_t { slow, fast };  // no names: set by a flag only

struct Sample {
  std::string name;
  std::string note = "hi";
  int64_t count = 3;
  int level = 1;
  uint64_t seed = 42;
  double rate = 0.5;
  bool verbose = false;
  bool keep = true;
  Mode mode = Mode::slow;
  Color color = Color::green;
  Color shade = Color::red;  // red is the default, but one may give only green or blue
  DType dtype = DType::f32;
  bool dtype_given = false;
  int64_t steps = 10;
  bool steps_given = false;

  template <class Visitor>
  void visit(Visitor& v) {
    using namespace opt;
    v(name, "--name|-n", "NAME", "who", Required{}, PythonJob{}, Alias{"--the-name"});
    v(note, "--note", "TEXT", "a note");
    v(count, "--count", "N", "how many", Positive{});
    v(level, "--level", "L", "0 to 5", InRange{0, 5});
    v(seed, "--seed", "S", "a seed");
    v(rate, "--rate", "R", "how fast", Finite{}, NonNegative{"off"});
    v(verbose, "--verbose", "", "talk");
    v(keep, "--no-keep", "", "do not keep", SetsTo{false});
    v(mode, "--fast", "", "hurry", SetsTo{Mode::fast});
    v(color, "--color", "", "a color");
    v(shade, "--shade", "", "a shade", Choices{Color::green, Color::blue},
      DefaultText{"by the light"});
    v(dtype, "--dtype", "", "a dtype", Choices{DType::f32, DType::bf16}, DefaultText{"the file's"},
      PresentIf{dtype_given});
    v(steps, "--steps", "N", "steps", AtLeast{2}, Given{steps_given});
  }
};

Sample parse(std::vector<std::string> flags) {
  Args args("zerotune demo", "");
  Sample s;
  Argv argv(std::move(flags));
  EXPECT_TRUE(opt::parse_options(args, s, argv.argc(), argv.data(), 1));
  return s;
}

std::string parse_error(std::vector<std::string> flags) {
  return error_of([&] { parse(std::move(flags)); });
}

std::string help_of(Sample s = {}) {
  Args args("zerotune demo", "");
  opt::ArgsDeclarer declarer(args);
  s.visit(declarer);
  return args.help();
}

TEST(Options, OptionsNotGivenKeepTheirInitialValues) {
  const Sample s = parse({});
  const Sample initial;
  EXPECT_EQ(s.name, initial.name);
  EXPECT_EQ(s.note, "hi");
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.seed, 42u);
  EXPECT_EQ(s.rate, 0.5);
  EXPECT_FALSE(s.verbose);
  EXPECT_TRUE(s.keep);
  EXPECT_EQ(s.mode, Mode::slow);
  EXPECT_EQ(s.color, Color::green);
  EXPECT_EQ(s.shade, Color::red);
  EXPECT_FALSE(s.dtype_given);
  EXPECT_FALSE(s.steps_given);
}

TEST(Options, ParsesEachTypeIntoItsField) {
  const Sample s =
      parse({"-n",      "ada",   "--count",   "7",         "--level=4", "--seed",  "-1",
             "--rate",  "1e-3",  "--verbose", "--no-keep", "--fast",    "--color", "blue",
             "--shade", "green", "--dtype",   "bfloat16",  "--steps",   "5"});
  EXPECT_EQ(s.name, "ada");
  EXPECT_EQ(s.count, 7);
  EXPECT_EQ(s.level, 4);
  EXPECT_EQ(s.seed, std::numeric_limits<uint64_t>::max());  // -1 wraps, as strtoull reads it
  EXPECT_EQ(s.rate, 1e-3);
  EXPECT_TRUE(s.verbose);
  EXPECT_FALSE(s.keep);
  EXPECT_EQ(s.mode, Mode::fast);
  EXPECT_EQ(s.color, Color::blue);
  EXPECT_EQ(s.shade, Color::green);
  EXPECT_EQ(s.dtype, DType::bf16);  // core's other names of a dtype are accepted
  EXPECT_TRUE(s.dtype_given);
  EXPECT_EQ(s.steps, 5);
  EXPECT_TRUE(s.steps_given);
  EXPECT_EQ(parse({"--the-name", "bo"}).name, "bo");  // the alias
  EXPECT_EQ(parse({"--seed", "18446744073709551615"}).seed, 18446744073709551615u);
  EXPECT_TRUE(std::isinf(parse({"--rate", "inf"}).rate));  // read; refused by Finite later
}

TEST(Options, RefusesTextThatIsNotOfTheFieldsType) {
  EXPECT_EQ(parse_error({"--count", "x"}), "zerotune demo: --count expects an integer, got 'x'");
  EXPECT_EQ(parse_error({"--count", "3.5"}),
            "zerotune demo: --count expects an integer, got '3.5'");
  EXPECT_EQ(parse_error({"--count", ""}), "zerotune demo: --count expects an integer, got ''");
  EXPECT_EQ(parse_error({"--count", "99999999999999999999"}),
            "zerotune demo: --count expects an integer, got '99999999999999999999'");
  EXPECT_EQ(parse_error({"--level", "4294967296"}),  // beyond an int
            "zerotune demo: --level expects an integer, got '4294967296'");
  EXPECT_EQ(parse_error({"--rate", "fast"}), "zerotune demo: --rate expects a number, got 'fast'");
  EXPECT_EQ(parse_error({"--color", "pink"}),
            "zerotune demo: --color must be red, green or blue, got 'pink'");
  EXPECT_EQ(parse_error({"--shade", "red"}),
            "zerotune demo: --shade must be green or blue, got 'red'");
  EXPECT_EQ(parse_error({"--dtype", "i32"}),
            "zerotune demo: --dtype must be f32 or bf16, got 'i32'");
  EXPECT_EQ(parse_error({"--verbose=yes"}), "zerotune demo: --verbose takes no value");
  EXPECT_EQ(parse_error({"--steps"}), "zerotune demo: --steps needs a value (N)");
}

std::string validation_error(const std::function<void(Sample&)>& change) {
  Sample s;
  s.name = "ada";
  change(s);
  return error_of([&] { opt::validate_options(s, "demo: "); });
}

TEST(Options, EachRuleFailsNamingTheOptionAndTheValue) {
  EXPECT_EQ(validation_error([](Sample&) {}), "");
  EXPECT_EQ(validation_error([](Sample& s) { s.name.clear(); }), "demo: --name is required");
  EXPECT_EQ(validation_error([](Sample& s) { s.count = 0; }),
            "demo: --count must be positive, got 0");
  EXPECT_EQ(validation_error([](Sample& s) { s.level = 6; }), "demo: --level must be 0-5, got 6");
  EXPECT_EQ(validation_error([](Sample& s) { s.level = -1; }), "demo: --level must be 0-5, got -1");
  EXPECT_EQ(validation_error([](Sample& s) { s.rate = -0.25; }),
            "demo: --rate must be >= 0 (0 = off), got -0.25");
  EXPECT_EQ(validation_error([](Sample& s) { s.rate = INFINITY; }),
            "demo: --rate must be finite, got inf");
  EXPECT_EQ(validation_error([](Sample& s) { s.rate = NAN; }),
            "demo: --rate must be finite, got nan");
  EXPECT_EQ(validation_error([](Sample& s) { s.steps = 1; }),
            "demo: --steps must be at least 2, got 1");
  // Bounds are inclusive, and Choices bound what may be given, not the default (red).
  EXPECT_EQ(validation_error([](Sample& s) {
              s.level = 5;
              s.steps = 2;
              s.rate = 0;
              s.count = 1;
            }),
            "");
}

TEST(Options, EnumNamesRoundTrip) {
  for (const opt::EnumName<Color>& entry : kColorNames) {
    Color parsed = entry.value == Color::red ? Color::blue : Color::red;
    ASSERT_TRUE(opt::parse_name(opt::name_of_value(entry.value), &parsed)) << entry.name;
    EXPECT_EQ(parsed, entry.value);
    EXPECT_EQ(opt::format_value(entry.value), entry.name);
  }
  Color unchanged = Color::green;
  EXPECT_FALSE(opt::parse_name("Red", &unchanged));  // names are exact
  EXPECT_EQ(unchanged, Color::green);
  EXPECT_EQ(opt::name_of_value(static_cast<Color>(9)), std::string("?"));
}

TEST(Options, PrintedOptionsParseBackToTheSameValues) {
  Sample s = parse({"-n", "ada", "--count", "12", "--level", "2", "--seed", "7", "--rate", "0.1",
                    "--no-keep", "--color", "red", "--shade", "blue", "--dtype", "bf16"});
  const std::string printed = opt::format_options(s);
  // Each line is "SPELLING VALUE": flags print yes or no.
  std::vector<std::string> flags;
  std::istringstream lines(printed);
  for (std::string line; std::getline(lines, line);) {
    const size_t space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    const std::string spelling = line.substr(0, space), value = line.substr(space + 1);
    if (value == "yes") {
      flags.push_back(spelling);
    } else if (value != "no" && value != "(none)" && value.front() != '(') {
      flags.push_back(spelling);
      flags.push_back(value);
    }
  }
  const Sample back = parse(flags);
  EXPECT_EQ(back.name, s.name);
  EXPECT_EQ(back.count, s.count);
  EXPECT_EQ(back.level, s.level);
  EXPECT_EQ(back.seed, s.seed);
  EXPECT_EQ(back.rate, s.rate);  // the shortest text that reads back exactly
  EXPECT_EQ(back.keep, s.keep);
  EXPECT_EQ(back.verbose, s.verbose);
  EXPECT_EQ(back.color, s.color);
  EXPECT_EQ(back.shade, s.shade);
  EXPECT_EQ(back.dtype, s.dtype);
  EXPECT_EQ(back.note, s.note);
}

TEST(Options, PrintingShowsFlagsAndUnsetValuesInWords) {
  const std::string printed = opt::format_options(parse({"-n", "ada", "--fast"}));
  EXPECT_NE(printed.find("--fast yes\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("--verbose no\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("--dtype (the file's)\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("--color green\n"), std::string::npos) << printed;
  Sample empty_note = parse({"-n", "ada", "--note", ""});
  EXPECT_NE(opt::format_options(empty_note).find("--note (none)\n"), std::string::npos);
}

TEST(Options, HelpListsEveryOptionOnceWithItsDefault) {
  const std::string help = help_of();
  for (const char* spelling :
       {"--name", "--note", "--count", "--level", "--seed", "--rate", "--verbose", "--no-keep",
        "--fast", "--color", "--shade", "--dtype", "--steps"}) {
    EXPECT_EQ(testing::count_entries(help, std::string("  ") + spelling), 1) << spelling;
  }
  using testing::help_entry;
  EXPECT_NE(help_entry(help, "--name").find("--name, -n NAME"), std::string::npos);
  EXPECT_NE(help_entry(help, "--name").find("(required; as the Python job; alias --the-name)"),
            std::string::npos);
  EXPECT_NE(help_entry(help, "--count").find("(default: 3)"), std::string::npos);
  EXPECT_NE(help_entry(help, "--rate").find("(default: 0.5)"), std::string::npos);
  EXPECT_NE(help_entry(help, "--color").find("--color red|green|blue"), std::string::npos);
  EXPECT_NE(help_entry(help, "--color").find("(default: green)"), std::string::npos);
  EXPECT_NE(help_entry(help, "--shade").find("--shade green|blue"), std::string::npos);
  EXPECT_NE(help_entry(help, "--shade").find("(default: by the light)"), std::string::npos);
  EXPECT_NE(help_entry(help, "--dtype").find("--dtype f32|bf16"), std::string::npos);
  EXPECT_EQ(help_entry(help, "--verbose").find("default"), std::string::npos);
  EXPECT_EQ(help_entry(help, "--count").find("Python"), std::string::npos);
  // The default shown is the field's initial value, whatever it is.
  Sample other;
  other.count = 9;
  EXPECT_NE(help_entry(help_of(other), "--count").find("(default: 9)"), std::string::npos);
}

TEST(Options, AssignConvertsChecksAndMarksGiven) {
  Sample s;
  opt::assign_option(s, s.level, int64_t{3}, "cfg: level");
  EXPECT_EQ(s.level, 3);
  opt::assign_option(s, s.rate, int64_t{2}, "cfg: rate");  // a whole number for a real option
  EXPECT_EQ(s.rate, 2.0);
  opt::assign_option(s, s.color, std::string("blue"), "cfg: color");
  EXPECT_EQ(s.color, Color::blue);
  opt::assign_option(s, s.steps, int64_t{4}, "cfg: steps");
  EXPECT_TRUE(s.steps_given);
  opt::assign_option(s, s.note, "from the config", "cfg: note");
  EXPECT_EQ(s.note, "from the config");

  EXPECT_EQ(error_of([&] { opt::assign_option(s, s.level, int64_t{9}, "cfg: level"); }),
            "cfg: level must be 0-5, got 9");
  EXPECT_EQ(error_of([&] { opt::assign_option(s, s.level, int64_t{1} << 40, "cfg: level"); }),
            "cfg: level is out of range, got 1099511627776");
  EXPECT_EQ(error_of([&] { opt::assign_option(s, s.shade, std::string("red"), "cfg: shade"); }),
            "cfg: shade must be green or blue, got 'red'");
  EXPECT_EQ(error_of([&] { opt::assign_option(s, s.rate, -1.0, "cfg: rate"); }),
            "cfg: rate must be >= 0 (0 = off), got -1");
  EXPECT_EQ(s.level, 3);  // unchanged by the refused values
  int64_t not_an_option = 0;
  EXPECT_NE(error_of([&] {
              opt::assign_option(s, not_an_option, int64_t{1}, "cfg: x");
            }).find("internal"),
            std::string::npos);
}

}  // namespace
}  // namespace zerotune
