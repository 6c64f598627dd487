#include "core/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "core/check.h"

namespace zerotune::json {
namespace {

// The message of the zerotune::Error that parsing `text` throws; fails the test when it parses.
std::string parse_error(std::string_view text, std::string_view source = "test.json") {
  try {
    parse(text, source);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a parse error for: " << text;
  return "";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(JsonParse, Scalars) {
  EXPECT_TRUE(parse("null", "t").is_null());
  EXPECT_TRUE(parse(" true ", "t").as_bool("v"));
  EXPECT_FALSE(parse("false", "t").as_bool("v"));
  EXPECT_EQ(parse("-42", "t").as_int64("v"), -42);
  EXPECT_EQ(parse("0", "t").as_int64("v"), 0);
  EXPECT_DOUBLE_EQ(parse("1.5e3", "t").as_double("v"), 1500.0);
  EXPECT_DOUBLE_EQ(parse("-0.25", "t").as_double("v"), -0.25);
  EXPECT_DOUBLE_EQ(parse("2E-2", "t").as_double("v"), 0.02);
  EXPECT_EQ(parse("\"hi\"", "t").as_string("v"), "hi");
  EXPECT_TRUE(parse("\t\r\n[]\n", "t").is_array());
}

TEST(JsonParse, ObjectsKeepMemberOrderAndFind) {
  const Value v = parse(R"({"z": 1, "a": [true, null], "m": {"x": "y"}})", "t");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.members().size(), 3u);
  EXPECT_EQ(v.members()[0].first, "z");
  EXPECT_EQ(v.members()[1].first, "a");
  EXPECT_EQ(v.members()[2].first, "m");
  ASSERT_NE(v.find("a"), nullptr);
  EXPECT_EQ(v.find("a")->items().size(), 2u);
  EXPECT_TRUE(v.find("a")->items()[1].is_null());
  EXPECT_EQ(v.find("m")->find("x")->as_string("x"), "y");
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(v.find("z")->find("anything"), nullptr);  // not an object
}

TEST(JsonParse, DuplicateKeysKeepLastValue) {
  const Value v = parse(R"({"a": 1, "b": 2, "a": 3})", "t");
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v.members()[0].first, "a");
  EXPECT_EQ(v.find("a")->as_int64("a"), 3);
  EXPECT_EQ(v.find("b")->as_int64("b"), 2);
}

TEST(JsonParse, LargeObjectLookupsAndDuplicates) {
  // Beyond the indexing threshold: lookups go through the hash index.
  std::string text = "{";
  for (int i = 0; i < 1000; ++i) text += str(i ? "," : "", "\"k", i, "\":", i);
  text += ",\"k500\":-1}";
  const Value v = parse(text, "t");
  ASSERT_EQ(v.size(), 1000u);
  EXPECT_EQ(v.find("k0")->as_int64("k0"), 0);
  EXPECT_EQ(v.find("k999")->as_int64("k999"), 999);
  EXPECT_EQ(v.find("k500")->as_int64("k500"), -1);
  EXPECT_EQ(v.members()[500].first, "k500");
  EXPECT_EQ(v.find("k1000"), nullptr);

  Value copy = v;  // the index is copied, not shared
  copy.set("k7", Value("seven"));
  EXPECT_EQ(copy.find("k7")->as_string("k7"), "seven");
  EXPECT_EQ(v.find("k7")->as_int64("k7"), 7);
  copy.set("new", Value(true));
  EXPECT_EQ(copy.size(), 1001u);
  EXPECT_TRUE(copy.find("new")->as_bool("new"));
  EXPECT_EQ(v.find("new"), nullptr);
}

TEST(JsonParse, Int64IsExact) {
  // 2^53 + 1 is not representable as a double; the integer must survive.
  const Value v = parse("9007199254740993", "t");
  EXPECT_TRUE(v.is_int64());
  EXPECT_EQ(v.as_int64("v"), int64_t{9007199254740993});
  EXPECT_EQ(v.dump(), "9007199254740993");
  EXPECT_EQ(parse("9223372036854775807", "t").as_int64("v"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse("-9223372036854775808", "t").as_int64("v"), std::numeric_limits<int64_t>::min());
  const Value v_array = parse("[18014398509481985]", "t");
  EXPECT_EQ(v_array.items()[0].as_int64("v"), int64_t{18014398509481985});
}

TEST(JsonParse, IntegersBeyondInt64BecomeDoubles) {
  const Value v = parse("9223372036854775808", "t");
  EXPECT_TRUE(v.is_number());
  EXPECT_FALSE(v.is_int64());
  EXPECT_DOUBLE_EQ(v.as_double("v"), 9223372036854775808.0);
  EXPECT_THROW(v.as_int64("v"), Error);
}

TEST(JsonAccessors, AsInt64OnIntegralAndFractionalDoubles) {
  EXPECT_EQ(parse("4096.0", "t").as_int64("v"), 4096);
  EXPECT_EQ(parse("1e3", "t").as_int64("v"), 1000);
  try {
    parse("1.5", "t").as_int64("config.json: \"n\"");
    FAIL() << "1.5 accepted as an integer";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "config.json: \"n\" must be an integer, got 1.5");
  }
  EXPECT_THROW(parse("1e300", "t").as_int64("v"), Error);
}

TEST(JsonAccessors, WrongKindErrorsNameFieldAndKind) {
  const Value config = parse(R"({"hidden_size": "4096", "flag": 1})", "config.json");
  try {
    config.find("hidden_size")->as_int64("config.json: \"hidden_size\"");
    FAIL() << "a string accepted as an integer";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "config.json: \"hidden_size\" must be an integer, got string");
  }
  try {
    config.find("flag")->as_bool("config.json: \"flag\"");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "config.json: \"flag\" must be a boolean, got number");
  }
  try {
    config.as_string("root");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "root must be a string, got object");
  }
  EXPECT_THROW(config.as_array("root"), Error);
  EXPECT_THROW(config.items(), Error);
  EXPECT_THROW(parse("[]", "t").members(), Error);
  EXPECT_THROW(parse("null", "t").as_double("v"), Error);
  EXPECT_THROW(parse("true", "t").as_object("v"), Error);
}

TEST(JsonUnicode, EscapesDecodeToUtf8) {
  EXPECT_EQ(parse(R"("\u00e9")", "t").as_string("v"), "\xC3\xA9");                // é
  EXPECT_EQ(parse(R"("\u20AC")", "t").as_string("v"), "\xE2\x82\xAC");            // €
  EXPECT_EQ(parse(R"("\ud83d\ude00")", "t").as_string("v"), "\xF0\x9F\x98\x80");  // 😀
  EXPECT_EQ(parse(R"("\uDBFF\uDFFF")", "t").as_string("v"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
  EXPECT_EQ(parse(R"("a\u0000b")", "t").as_string("v"), std::string("a\0b", 3));
  EXPECT_EQ(parse(R"("\"\\\/\b\f\n\r\t")", "t").as_string("v"), "\"\\/\b\f\n\r\t");
}

TEST(JsonUnicode, RawUtf8PassesThrough) {
  const std::string text = "\"caf\xC3\xA9 \xE2\x96\x81the \xF0\x9F\x98\x80\"";
  const Value v = parse(text, "t");
  EXPECT_EQ(v.as_string("v"), "caf\xC3\xA9 \xE2\x96\x81the \xF0\x9F\x98\x80");
  EXPECT_EQ(v.dump(), text);  // not re-escaped as \u
}

TEST(JsonUnicode, RejectsLoneSurrogates) {
  EXPECT_HAS(parse_error(R"("\ud800")"), "lone high surrogate");
  EXPECT_HAS(parse_error(R"("\ud800x")"), "lone high surrogate");
  EXPECT_HAS(parse_error(R"("\ud800\u0041")"), "not a low surrogate");
  EXPECT_HAS(parse_error(R"("\udc00")"), "lone low surrogate");
  EXPECT_HAS(parse_error(R"("\u12")"), "4 hex digits");
  EXPECT_HAS(parse_error(R"("\u12G4")"), "4 hex digits");
}

TEST(JsonUnicode, RejectsInvalidUtf8) {
  EXPECT_HAS(parse_error("\"\xFF\""), "invalid UTF-8");
  EXPECT_HAS(parse_error("\"\xC0\xAF\""), "invalid UTF-8");          // overlong '/'
  EXPECT_HAS(parse_error("\"\xED\xA0\x80\""), "invalid UTF-8");      // encoded surrogate
  EXPECT_HAS(parse_error("\"\xE2\x82\""), "invalid UTF-8");          // truncated
  EXPECT_HAS(parse_error("\"\xF4\x90\x80\x80\""), "invalid UTF-8");  // above U+10FFFF
}

TEST(JsonErrors, CarrySourceLineAndColumn) {
  const std::string text = "{\n  \"a\": 1,\n  \"b\": [1, 2] x\n}";
  EXPECT_EQ(parse_error(text, "tokens.json"),
            "tokens.json:3:15: expected ',' or '}' after object member, got 'x'");
  EXPECT_EQ(parse_error("[1,\n 2\n", "data.json"),
            "data.json:3:1: expected ',' or ']' after array element, got end of input");
  EXPECT_EQ(parse_error("{\"a\" 1}", "c.json"),
            "c.json:1:6: expected ':' after object key, got '1'");
}

TEST(JsonErrors, RejectsStructuralMistakes) {
  EXPECT_HAS(parse_error(""), "test.json:1:1: expected a value, got end of input");
  EXPECT_HAS(parse_error("   "), "expected a value");
  EXPECT_HAS(parse_error("[1,]"), "expected a value, got ']'");
  EXPECT_HAS(parse_error(R"({"a":1,})"), "expected '\"' to start an object key, got '}'");
  EXPECT_HAS(parse_error("{a:1}"), "expected '\"' to start an object key, got 'a'");
  EXPECT_HAS(parse_error("['a']"), "single quotes");
  EXPECT_HAS(parse_error("[1] // comment"), "expected end of input after the top-level value");
  EXPECT_HAS(parse_error("{} {}"), "test.json:1:4: expected end of input");
  EXPECT_HAS(parse_error("tru"), "invalid literal, expected 'true'");
  EXPECT_HAS(parse_error("nul"), "expected 'null'");
  EXPECT_HAS(parse_error("[1 2]"), "expected ',' or ']'");
  EXPECT_HAS(parse_error("\x01"), "got byte 0x01");
}

TEST(JsonErrors, RejectsTrailingGarbage) {
  EXPECT_HAS(parse_error("1 x"), "test.json:1:3: expected end of input after the top-level value");
  EXPECT_HAS(parse_error("\"a\"\"b\""), "expected end of input");
  EXPECT_HAS(parse_error(std::string_view("{}\0", 3)), "got byte 0x00");
}

TEST(JsonErrors, RejectsBadNumbers) {
  EXPECT_HAS(parse_error("01"), "leading zeros");
  EXPECT_HAS(parse_error("-01"), "leading zeros");
  EXPECT_HAS(parse_error("[00]"), "leading zeros");
  EXPECT_HAS(parse_error("NaN"), "NaN, Infinity");
  EXPECT_HAS(parse_error("Infinity"), "NaN, Infinity");
  EXPECT_HAS(parse_error("-Infinity"), "expected a digit after '-', got 'I'");
  EXPECT_HAS(parse_error("+1"), "got '+'");
  EXPECT_HAS(parse_error("1."), "expected a digit after the decimal point");
  EXPECT_HAS(parse_error(".5"), "expected a value, got '.'");
  EXPECT_HAS(parse_error("1e"), "expected a digit in the exponent");
  EXPECT_HAS(parse_error("1e+"), "expected a digit in the exponent");
  EXPECT_HAS(parse_error("0x10"), "expected end of input");
  EXPECT_HAS(parse_error("1e400"), "out of range");
  EXPECT_EQ(parse("1e-400", "t").as_double("v"), 0.0);
  EXPECT_EQ(parse("0", "t").as_int64("v"), 0);
  EXPECT_EQ(parse("-0", "t").as_int64("v"), 0);
  EXPECT_DOUBLE_EQ(parse("0.5", "t").as_double("v"), 0.5);
}

TEST(JsonErrors, RejectsBadStrings) {
  EXPECT_HAS(parse_error("\"a\nb\""), "unescaped control character byte 0x0A");
  EXPECT_HAS(parse_error("\"a\tb\""), "unescaped control character byte 0x09");
  EXPECT_HAS(parse_error("\"abc"), "test.json:1:1: unterminated string");
  EXPECT_HAS(parse_error("\"abc\\"), "unterminated string");
  EXPECT_HAS(parse_error(R"("\x41")"), "invalid escape in string: '\\' followed by 'x'");
  EXPECT_HAS(parse_error(R"("\U0041")"), "invalid escape");
}

TEST(JsonErrors, DepthIsBounded) {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(parse(nested(kMaxDepth), "t").is_array());
  EXPECT_HAS(parse_error(nested(kMaxDepth + 1)), "nesting deeper than 256 levels");
  // Far deeper input must fail cleanly, not overflow the stack.
  EXPECT_HAS(parse_error(std::string(1000000, '[')), "nesting deeper");
  std::string objects;
  for (int i = 0; i <= kMaxDepth; ++i) objects += "{\"a\":";
  EXPECT_HAS(parse_error(objects), "nesting deeper");
}

TEST(JsonParse, MutatedInputEitherParsesOrThrowsError) {
  // Corrupt a realistic document a byte at a time: the parser must never crash or throw anything
  // but zerotune::Error, and whatever it accepts must survive a dump/parse round trip.
  const std::string original =
      R"({"vocab": {"\u2581the": 1, "caf\u00e9": -2, "x\ud83d\ude00": 3.5e-2},)"
      R"( "merges": ["a b", "\u2581 t"], "flags": [true, false, null], "n": 12345678901234,)"
      "\n \"s\": \"tab\\tnew\\nline \xC3\xA9\"}";
  ASSERT_NO_THROW(parse(original, "t"));
  const char alphabet[] = "{}[]:,\"\\u0123456789abcdefABCDEF.eE+-tfn \n\x01\x7F\xC3\xA9\xFF";
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int iteration = 0; iteration < 5000; ++iteration) {
    std::string text = original;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % text.size();
      const char c = alphabet[rng() % (sizeof(alphabet) - 1)];
      switch (rng() % 3) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(at, 1, c);
          break;
        default:
          text.erase(at, 1);
          break;
      }
    }
    try {
      const Value v = parse(text, "fuzz");
      ++accepted;
      EXPECT_EQ(parse(v.dump(), "again").dump(2), v.dump(2)) << text;
    } catch (const Error&) {
    } catch (...) {
      ADD_FAILURE() << "non-zerotune exception for: " << text;
    }
  }
  EXPECT_GT(accepted, 0);  // some edits (inside strings, digits) keep the document valid
}

TEST(JsonParse, SkipsByteOrderMark) {
  EXPECT_EQ(parse("\xEF\xBB\xBF{\"a\":1}", "t").find("a")->as_int64("a"), 1);
}

TEST(JsonWrite, CompactAndPretty) {
  Value v = Value::object();
  v.set("name", "llama");
  v.set("layers", 32);
  v.set("eps", 1e-5);
  v.set("tied", false);
  v.set("none", nullptr);
  Value ids = Value::array();
  ids.push_back(1);
  ids.push_back(int64_t{-2});
  v.set("ids", std::move(ids));
  v.set("empty", Value::array());
  v.set("obj", Value::object());
  v.set("layers", 40);  // replaced in place
  EXPECT_EQ(v.dump(),
            R"({"name":"llama","layers":40,"eps":1e-05,"tied":false,"none":null,"ids":[1,-2],)"
            R"("empty":[],"obj":{}})");
  EXPECT_EQ(v.dump(2),
            "{\n"
            "  \"name\": \"llama\",\n"
            "  \"layers\": 40,\n"
            "  \"eps\": 1e-05,\n"
            "  \"tied\": false,\n"
            "  \"none\": null,\n"
            "  \"ids\": [\n"
            "    1,\n"
            "    -2\n"
            "  ],\n"
            "  \"empty\": [],\n"
            "  \"obj\": {}\n"
            "}");
  EXPECT_EQ(parse(v.dump(2), "t").dump(), v.dump());
  EXPECT_EQ(parse(v.dump(), "t").dump(2), v.dump(2));
}

TEST(JsonWrite, DoublesRoundTripExactly) {
  EXPECT_EQ(Value(0.1).dump(), "0.1");
  EXPECT_EQ(Value(3.0).dump(), "3");
  EXPECT_EQ(Value(-0.5).dump(), "-0.5");
  EXPECT_EQ(Value(10000.0).dump(), "10000");
  const double samples[] = {
      0.1,       1.0 / 3.0,
      2.0 / 3.0, 1e-300,
      5e-324,    1.7976931348623157e308,
      -123.456,  6.02214076e23,
      1e21,      0.30000000000000004,
  };
  for (double d : samples) {
    const double back = parse(Value(d).dump(), "t").as_double("v");
    EXPECT_EQ(back, d) << Value(d).dump();
  }
  uint64_t bits = 0x123456789abcdefull;
  for (int i = 0; i < 1000; ++i) {
    bits = bits * 6364136223846793005ull + 1442695040888963407ull;
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    if (!std::isfinite(d)) continue;
    EXPECT_EQ(parse(Value(d).dump(), "t").as_double("v"), d) << Value(d).dump();
  }
}

TEST(JsonWrite, NonFiniteDoublesAndBadUtf8Throw) {
  EXPECT_THROW(Value(std::nan("")).dump(), Error);
  EXPECT_THROW(Value(std::numeric_limits<double>::infinity()).dump(), Error);
  EXPECT_THROW(quote("\xFF"), Error);
  EXPECT_THROW(Value("\xC3").dump(), Error);
}

TEST(JsonWrite, IntegerConstructors) {
  EXPECT_EQ(Value(7).dump(), "7");
  EXPECT_EQ(Value(size_t{123}).dump(), "123");
  EXPECT_EQ(Value(std::numeric_limits<int64_t>::min()).dump(), "-9223372036854775808");
  EXPECT_TRUE(Value(uint32_t{5}).is_int64());
  EXPECT_THROW(Value(std::numeric_limits<uint64_t>::max()), Error);
  EXPECT_TRUE(Value(true).is_bool());   // bool does not become an integer
  EXPECT_TRUE(Value("s").is_string());  // nor does a literal become a bool
}

TEST(JsonWrite, QuoteEscapes) {
  EXPECT_EQ(quote("plain"), "\"plain\"");
  EXPECT_EQ(quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(quote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(quote(std::string("\0\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(quote("/"), "\"/\"");
  EXPECT_EQ(quote("\xE2\x96\x81"), "\"\xE2\x96\x81\"");
  // Every byte string that quote() accepts reads back unchanged.
  std::string all_ascii;
  for (int c = 0; c < 128; ++c) all_ascii += static_cast<char>(c);
  EXPECT_EQ(parse(quote(all_ascii), "t").as_string("v"), all_ascii);
}

TEST(JsonWrite, BuilderErrorsOnWrongKind) {
  Value array = Value::array();
  EXPECT_THROW(array.set("a", 1), Error);
  Value object = Value::object();
  EXPECT_THROW(object.push_back(1), Error);
}

}  // namespace
}  // namespace zerotune::json

namespace zerotune::json {
namespace {

TEST(JsonParseLine, ErrorsCarryTheFileLine) {
  try {
    parse_line("{\"input_ids\": [1, 2", "batch.jsonl", 7);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("batch.jsonl:7:20: ", 0), 0u) << e.what();
  }
  EXPECT_EQ(parse_line("[1]", "x", 3).items().size(), 1u);
}

}  // namespace
}  // namespace zerotune::json
