#include "data/synth.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace zerotune {
namespace {

// An independent calculator for the annotations: integers, + - * / with the usual precedence and
// left associativity. Returns nullopt for a syntax error, an inexact division or a division by 0.
class Calculator {
 public:
  static std::optional<int64_t> eval(const std::string& expr) {
    Calculator c(expr);
    const std::optional<int64_t> value = c.sum();
    if (!value || c.pos_ != expr.size()) return std::nullopt;
    return value;
  }

 private:
  explicit Calculator(const std::string& s) : s_(s) {}

  std::optional<int64_t> sum() {
    std::optional<int64_t> acc = product();
    while (acc && pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
      const char op = s_[pos_++];
      const std::optional<int64_t> rhs = product();
      if (!rhs) return std::nullopt;
      acc = op == '+' ? *acc + *rhs : *acc - *rhs;
    }
    return acc;
  }

  std::optional<int64_t> product() {
    std::optional<int64_t> acc = number();
    while (acc && pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/')) {
      const char op = s_[pos_++];
      const std::optional<int64_t> rhs = number();
      if (!rhs) return std::nullopt;
      if (op == '/' && (*rhs == 0 || *acc % *rhs != 0)) return std::nullopt;
      acc = op == '*' ? *acc * *rhs : *acc / *rhs;
    }
    return acc;
  }

  std::optional<int64_t> number() {
    const size_t start = pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ == start || pos_ - start > 12) return std::nullopt;
    return std::stoll(s_.substr(start, pos_ - start));
  }

  const std::string& s_;
  size_t pos_ = 0;
};

TEST(SynthCalculator, Basics) {
  EXPECT_EQ(Calculator::eval("48/2"), 24);
  EXPECT_EQ(Calculator::eval("2+3*4"), 14);
  EXPECT_EQ(Calculator::eval("120*25/100"), 30);
  EXPECT_EQ(Calculator::eval("10-3-4"), 3);
  EXPECT_FALSE(Calculator::eval("7/2"));
  EXPECT_FALSE(Calculator::eval("1+"));
  EXPECT_FALSE(Calculator::eval("0.2*5"));
}

struct Annotation {
  std::string shown;        // the expression written before " = " (or " = $")
  std::string expr, value;  // <<expr=value>>
  std::string after;        // the digits right after ">>"
};

// Every "<<...>>" of a GSM8K answer with the text around it. (No std::regex: GCC 12 warns inside
// it under the sanitizer build, and warnings are errors.)
std::vector<Annotation> annotations(const std::string& answer) {
  std::vector<Annotation> out;
  for (size_t open = answer.find("<<"); open != std::string::npos;
       open = answer.find("<<", open + 2)) {
    Annotation a;
    const size_t close = answer.find(">>", open);
    if (close == std::string::npos) {
      a.expr = "<unterminated>";
      out.push_back(a);
      break;
    }
    const std::string inside = answer.substr(open + 2, close - open - 2);
    const size_t eq = inside.find('=');
    a.expr = inside.substr(0, eq);
    a.value = eq == std::string::npos ? "" : inside.substr(eq + 1);
    size_t end = close + 2;
    while (end < answer.size() && std::isdigit(static_cast<unsigned char>(answer[end]))) ++end;
    a.after = answer.substr(close + 2, end - close - 2);
    size_t before = open;
    if (before > 0 && answer[before - 1] == '$') --before;
    if (before >= 4 && answer.compare(before - 3, 3, " = ") == 0) {
      const size_t space = answer.find_last_of(" \n", before - 4);
      const size_t start = space == std::string::npos ? 0 : space + 1;
      a.shown = answer.substr(start, before - 3 - start);
    }
    out.push_back(a);
  }
  return out;
}

// Checks one problem against GSM8K's format and recomputes every annotation.
void check_problem(const SynthProblem& p) {
  SCOPED_TRACE("question: " + p.question + "\nanswer:\n" + p.answer);
  EXPECT_FALSE(p.question.empty());
  EXPECT_EQ(p.question.back(), '?');
  EXPECT_EQ(p.question.find("  "), std::string::npos);
  EXPECT_EQ(p.question.find('\n'), std::string::npos);
  EXPECT_GE(p.steps.size(), 1u);
  EXPECT_LE(p.steps.size(), 3u);

  // Every annotation "E = <<E=V>>V" (or "E = $<<E=V>>V"): recomputed, and the same as the step.
  const std::vector<Annotation> found = annotations(p.answer);
  ASSERT_EQ(found.size(), p.steps.size());
  for (size_t n = 0; n < found.size(); ++n) {
    const Annotation& a = found[n];
    EXPECT_EQ(a.shown, a.expr);
    EXPECT_EQ(a.value, a.after);
    const std::optional<int64_t> recomputed = Calculator::eval(a.expr);
    ASSERT_TRUE(recomputed) << "cannot evaluate exactly: " << a.expr;
    EXPECT_EQ(std::to_string(*recomputed), a.value) << a.expr;
    EXPECT_GE(*recomputed, 0);
    EXPECT_LE(*recomputed, 100000);
    EXPECT_EQ(p.steps[n].expr, a.expr);
    EXPECT_EQ(p.steps[n].value, *recomputed);
  }

  // Reasoning lines end with '.', then "#### <final>" equal to the last step recomputed.
  const size_t last_newline = p.answer.rfind('\n');
  EXPECT_NE(last_newline, std::string::npos);
  EXPECT_EQ(p.answer.substr(last_newline + 1), "#### " + std::to_string(p.final_value));
  EXPECT_EQ(p.answer[last_newline - 1], '.');
  if (!p.steps.empty()) {
    EXPECT_EQ(p.final_value, p.steps.back().value);
    EXPECT_EQ(Calculator::eval(p.steps.back().expr), p.final_value);
  }
}

TEST(Synth, EveryTemplateIsCorrect) {
  const int templates = static_cast<int>(synth_template_names().size());
  EXPECT_GE(templates, 15);
  Rng rng(123);
  for (int t = 0; t < templates; ++t) {
    for (int i = 0; i < 300; ++i) {
      const SynthProblem p = synth_problem(rng, t);
      EXPECT_EQ(p.template_id, t);
      check_problem(p);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(Synth, GsmStyleExample) {
  // The shape of one answer, so that a change of style is a visible test change.
  Rng rng(0);
  const SynthProblem p = synth_problem(rng, 0);
  ASSERT_EQ(synth_template_names()[0], "shopping_total");
  ASSERT_EQ(p.steps.size(), 3u);
  auto money = [](const SynthStep& s) {
    const std::string v = std::to_string(s.value);
    return s.expr + " = $<<" + s.expr + "=" + v + ">>" + v;
  };
  std::vector<std::string> lines;
  for (size_t start = 0, nl = 0; nl != std::string::npos; start = nl + 1) {
    nl = p.answer.find('\n', start);
    lines.push_back(p.answer.substr(start, nl == std::string::npos ? nl : nl - start));
  }
  ASSERT_EQ(lines.size(), 4u) << p.answer;
  EXPECT_NE(lines[0].find(" spends " + money(p.steps[0]) + " on "), std::string::npos) << lines[0];
  EXPECT_TRUE(lines[1].starts_with("She spends ") || lines[1].starts_with("He spends "));
  EXPECT_NE(lines[1].find(money(p.steps[1]) + " on "), std::string::npos) << lines[1];
  EXPECT_TRUE(lines[2] == "In all, she spends " + money(p.steps[2]) + "." ||
              lines[2] == "In all, he spends " + money(p.steps[2]) + ".")
      << lines[2];
  EXPECT_EQ(lines[3], "#### " + std::to_string(p.final_value));
}

TEST(Synth, VarietyInAThousand) {
  Rng rng(7);
  std::map<int, int> per_template;
  std::set<std::string> questions;
  std::set<size_t> step_counts;
  for (int i = 0; i < 1000; ++i) {
    const SynthProblem p = synth_problem(rng);
    ++per_template[p.template_id];
    questions.insert(p.question);
    step_counts.insert(p.steps.size());
    check_problem(p);
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_EQ(per_template.size(), synth_template_names().size());  // every template hit
  for (const auto& [t, count] : per_template) EXPECT_GE(count, 10) << synth_template_names()[t];
  EXPECT_GE(questions.size(), 990u);
  EXPECT_EQ(step_counts, (std::set<size_t>{1, 2, 3}));
}

TEST(Synth, DeterministicPerSeed) {
  const SynthDataset a = synth_dataset(60, 20, 5);
  const SynthDataset b = synth_dataset(60, 20, 5);
  const SynthDataset c = synth_dataset(60, 20, 6);
  ASSERT_EQ(a.train.size(), 60u);
  ASSERT_EQ(a.test.size(), 20u);
  for (size_t i = 0; i < a.train.size(); ++i) {
    EXPECT_EQ(a.train[i].question, b.train[i].question);
    EXPECT_EQ(a.train[i].answer, b.train[i].answer);
  }
  for (size_t i = 0; i < a.test.size(); ++i) EXPECT_EQ(a.test[i].answer, b.test[i].answer);
  int same = 0;
  for (size_t i = 0; i < a.train.size(); ++i) same += a.train[i].question == c.train[i].question;
  EXPECT_LT(same, 5);
}

TEST(Synth, FullSizeSplitsAreDisjoint) {
  const SynthDataset d = synth_dataset(7473, 1319, 0);
  ASSERT_EQ(d.train.size(), 7473u);
  ASSERT_EQ(d.test.size(), 1319u);
  std::set<std::string> train;
  for (const SynthProblem& p : d.train) train.insert(p.question);
  EXPECT_EQ(train.size(), d.train.size());  // no duplicates within train
  std::set<std::string> test;
  for (const SynthProblem& p : d.test) {
    EXPECT_EQ(train.count(p.question), 0u) << p.question;
    test.insert(p.question);
  }
  EXPECT_EQ(test.size(), d.test.size());
}

TEST(Synth, BadArguments) {
  Rng rng(0);
  EXPECT_THROW(synth_problem(rng, -1), std::exception);
  EXPECT_THROW(synth_problem(rng, static_cast<int>(synth_template_names().size())), std::exception);
  EXPECT_THROW(synth_dataset(-1, 5, 0), std::exception);
}

}  // namespace
}  // namespace zerotune
