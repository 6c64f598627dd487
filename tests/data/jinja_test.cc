// The Jinja interpreter's pieces. Expected texts are what Python's jinja2 3.1 renders for the same
// template with transformers' settings (trim_blocks, lstrip_blocks, json.dumps tojson), worked out
// with jinja2; tests/reference/check_chat_template.py compares whole chat templates live.
#include "data/jinja.h"

#include <gtest/gtest.h>

#include <string>

namespace zerotune::jinja {
namespace {

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

std::string render(const std::string& source, const Variables& variables = {}, Limits limits = {}) {
  return Template::parse(source, "test.jinja", limits).render(variables);
}

// The message of the TemplateError that parsing or rendering throws ("" when none is thrown).
std::string error_of(const std::string& source, const Variables& variables = {},
                     Limits limits = {}) {
  try {
    render(source, variables, limits);
  } catch (const TemplateError& e) {
    return e.what();
  }
  return "";
}

Value json_value(const std::string& text) {
  return Value::from_json(json::parse(text, "test"));
}

TEST(JinjaWhitespace, MinusStripsAndTrimBlocksEatsOneNewline) {
  EXPECT_EQ(render("  {%- if true %}\n    a\n  {%- endif %}\n{{ 'b' }}\n"), "    ab");
  EXPECT_EQ(render("a {#- c -#} b\n{# c #}\nd"), "ab\nd");
}

TEST(JinjaWhitespace, LstripBlocksRemovesIndentBeforeBlockTagsOnly) {
  EXPECT_EQ(render("x\n    {% if true %}\n    y\n    {% endif %}\n  {{ 'z' }}\n"), "x\n    y\n  z");
  // `+` keeps the indentation and the newline after the tag.
  EXPECT_EQ(render("x\n    {%+ if true %}y{% endif +%}\nz"), "x\n    y\nz");
}

TEST(JinjaWhitespace, OneTrailingNewlineIsDroppedAndCrlfBecomesLf) {
  EXPECT_EQ(render("{{ 'x' }}\n\n"), "x\n");
  EXPECT_EQ(render("a\r\nb\r\n"), "a\nb");
}

TEST(JinjaRaw, KeepsTagsAsText) {
  EXPECT_EQ(render("{% raw %}{{ x }} {% if %}{% endraw %}"), "{{ x }} {% if %}");
}

TEST(JinjaLoops, LoopVariablesFilterAndElse) {
  const Variables vars = {{"ms", json_value(R"(["a", "skip", "b"])")}};
  EXPECT_EQ(render("{% for m in ms if m != 'skip' %}{{ loop.index }}/{{ loop.length }}:{{ m }}"
                   "{% if not loop.last %},{% endif %}{% else %}none{% endfor %}",
                   vars),
            "1/2:a,2/2:b");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
}

TEST(JinjaLoops, SetInsideALoopStaysThereButNamespacesChange) {
  EXPECT_EQ(render("{% set total = 0 %}{% set ns = namespace(total=0) %}{% for i in [1, 2, 3] %}"
                   "{% set total = total + i %}{% set ns.total = ns.total + i %}{% endfor %}"
                   "{{ total }} {{ ns.total }}"),
            "0 6");
}

TEST(JinjaLoops, BreakAndContinue) {
  EXPECT_EQ(render("{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}"
                   "{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "0246");
}

TEST(JinjaFilters, TojsonIsJsonDumpsWithoutAsciiEscaping) {
  const Variables vars = {{"v", json_value(R"({"name": "é \"q\"", "n": [1, 2.5, null, true]})")}};
  EXPECT_EQ(render("{{ v | tojson }}|{{ v | tojson(indent=2) }}", vars),
            "{\"name\": \"é \\\"q\\\"\", \"n\": [1, 2.5, null, true]}|{\n  \"name\": \"é "
            "\\\"q\\\"\",\n  \"n\": [\n    1,\n    2.5,\n    null,\n    true\n  ]\n}");
}

TEST(JinjaFilters, TrimStripsUnicodeWhitespace) {
  EXPECT_EQ(render("[{{ s | trim }}]", {{"s", Value("\u3000 hi\u00a0\n")}}), "[hi]");
}

TEST(JinjaFilters, SelectattrMapJoin) {
  const Variables vars = {{"ms", json_value(R"([{"role": "user", "content": "a"},
      {"role": "bot", "content": "b"}, {"role": "user", "content": "c"}])")}};
  EXPECT_EQ(render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | "
                   "join(' + ') }}",
                   vars),
            "a + c");
}

TEST(JinjaFilters, StringAndNumberFilters) {
  EXPECT_EQ(render("{{ 'hello world' | capitalize }}|{{ 'a\nb' | indent(2) }}|{{ '3' | int + 1 }}|"
                   "{{ [3,1,2] | sort | first }}|{{ none | default('d') }}|{{ 'x' | replace('x', "
                   "'y') }}"),
            "Hello world|a\n  b|4|1|None|y");
}

TEST(JinjaValues, PrintAsPythonDoes) {
  EXPECT_EQ(render("{{ 1.0 }} {{ 1e16 }} {{ 0.0001 }} {{ 1e-5 }} {{ [1, 'a', none] }} "
                   "{{ {'k': (1,)} }} {{ 7 // -2 }} {{ 7 % -2 }}"),
            "1.0 1e+16 0.0001 1e-05 [1, 'a', None] {'k': (1,)} -4 -1");
}

TEST(JinjaValues, SlicesAndMethodsWorkByCodePoint) {
  EXPECT_EQ(render("{{ 'héllo'[1:4] }} {{ [1,2,3,4,5][::-2] }} {{ 'abc'[-1] }}"),
            "éll [5, 3, 1] c");
  EXPECT_EQ(render("{{ ' a b '.strip() }}|{{ 'a,b'.split(',') }}|{{ 'Ab'.upper() }}|"
                   "{{ 'x'.startswith('x') }}|{{ {'a':1}.get('b', 2) }}|{{ 'one two'.title() }}"),
            "a b|['a', 'b']|AB|True|2|One Two");
}

TEST(JinjaValues, UndefinedPrintsEmptyAndIsFalse) {
  EXPECT_EQ(
      render("[{{ nope }}]{{ nope is defined }}{{ 'y' if nope else 'n' }}{{ nope | length }}"),
      "[]Falsen0");
}

TEST(JinjaMacros, DefaultsAndKeywords) {
  EXPECT_EQ(render("{% macro tag(name, body='') %}<{{ name }}>{{ body }}</{{ name }}>{% endmacro %}"
                   "{{ tag('b', 'x') }}{{ tag(name='i') }}"),
            "<b>x</b><i></i>");
}

// A namespace holding itself and a macro held by its own scope are cycles; the interpreter breaks
// them when the render ends (the sanitizer build's leak check fails otherwise).
TEST(JinjaMacros, CyclesAreFreed) {
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}"
                   "{% macro m() %}{{ ns is defined }}{% endmacro %}{% set ns.m = m %}{{ ns.m() }}"),
            "TrueTrue");
}

TEST(JinjaErrors, SyntaxErrorsNameOriginAndLine) {
  EXPECT_HAS(error_of("line one\n{{ 'a' }}\n{{ 1 + }}\n"), "test.jinja:3: ");
  EXPECT_HAS(error_of("{% for x in y %}\n"), "test.jinja:1: Unexpected end of template");
  EXPECT_HAS(error_of("\n{{ x | no_such_filter }}"),
             "test.jinja:2: No filter named 'no_such_filter'.");
  EXPECT_HAS(error_of("{% frobnicate %}"), "Encountered unknown tag 'frobnicate'");
  EXPECT_HAS(error_of("{{ 'unterminated }}"), "unexpected char");
  EXPECT_HAS(error_of("{% break %}"), "'break' outside of a loop");
}

TEST(JinjaErrors, RuntimeErrorsNameTheLine) {
  EXPECT_HAS(error_of("ok\n\n{{ 'a' + 1 }}"),
             "test.jinja:3: can only concatenate str (not \"int\") to str");
  EXPECT_HAS(error_of("{{ missing.attr }}"), "test.jinja:1: 'missing' is undefined");
  EXPECT_HAS(error_of("{{ d.nope.deeper }}", {{"d", json_value("{}")}}),
             "'dict object' has no attribute 'nope'");
  EXPECT_HAS(error_of("{{ xs[3]['role'] }}", {{"xs", json_value("[]")}}),
             "list object has no element 3");
  EXPECT_HAS(error_of("{{ nope() }}"), "'nope' is undefined");
  EXPECT_HAS(error_of("{% set x = 1 %}{% set x.a = 2 %}"),
             "cannot assign attribute on non-namespace object");
  EXPECT_HAS(error_of("{{ 1 / 0 }}"), "division by zero");
}

TEST(JinjaErrors, RaiseExceptionCarriesTheMessageAlone) {
  try {
    render("\n{{ raise_exception('Roles must alternate ' ~ 2) }}");
    FAIL() << "no exception";
  } catch (const RaisedError& e) {
    EXPECT_STREQ(e.what(), "Roles must alternate 2");
  }
}

TEST(JinjaErrors, MutatingMethodsAreUnsafe) {
  EXPECT_HAS(error_of("{% set xs = [] %}{{ xs.append(1) }}"),
             "access to attribute 'append' of 'list' object is unsafe.");
}

TEST(JinjaBounds, LoopIterations) {
  Limits limits;
  limits.max_loop_iterations = 1000;
  EXPECT_EQ(render("{% for i in range(9) %}{% for j in range(100) %}{% endfor %}{% endfor %}x", {},
                   limits),
            "x");
  EXPECT_HAS(error_of("{% for i in range(11) %}{% for j in range(100) %}{% endfor %}{% endfor %}",
                      {}, limits),
             "loops ran more than 1000 iterations");
}

TEST(JinjaBounds, OutputAndStringSizes) {
  Limits limits;
  limits.max_output_bytes = 1000;
  EXPECT_HAS(error_of("{% for i in range(200) %}{{ 'abcdefgh' }}{% endfor %}", {}, limits),
             "rendered text is over the limit of 1000 bytes");
  EXPECT_HAS(error_of("{{ 'ab' * 100000 }}", {}, limits), "over the limit of 1000");
  EXPECT_HAS(error_of("{{ 'x' * 9223372036854775807 }}"), "over the limit of 16777216");
  EXPECT_HAS(error_of("{{ 2 ** 64 }}"), "integer overflow");
}

TEST(JinjaBounds, RangeMacroDepthNestingSourceAndWork) {
  EXPECT_HAS(error_of("{{ range(100001) | length }}"), "Range too big");
  EXPECT_HAS(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
             "macro calls nested deeper than 50");
  EXPECT_HAS(error_of("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}"),
             "nesting deeper than 100 levels");
  Limits small;
  small.max_source_bytes = 10;
  EXPECT_HAS(error_of("{{ 'twelve bytes' }}", {}, small), "over the limit of 10");
  Limits little_work;
  little_work.max_work = 10000;
  EXPECT_HAS(error_of("{% set ns = namespace(s='') %}{% for i in range(1000) %}"
                      "{% set ns.s = ns.s ~ 'abcdefghij' %}{% endfor %}",
                      {}, little_work),
             "too expensive");
}

TEST(JinjaBounds, InvalidUtf8SourceIsRefused) {
  EXPECT_HAS(error_of(std::string("ok \xff")), "test.jinja: template is not valid UTF-8");
}

}  // namespace
}  // namespace zerotune::jinja
