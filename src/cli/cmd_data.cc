// `zerotune data gsm8k` and `zerotune data synth`: build a fine-tuning dataset folder
// (train.jsonl, test.jsonl, tokens.json) from GSM8K or from the built-in word-problem generator.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/check.h"
#include "core/json.h"
#include "data/gsm8k.h"
#include "data/synth.h"

namespace zerotune {

namespace {

void print_summary(int64_t train, int64_t test, const std::string& out_dir) {
  std::printf("{\"train\": %lld, \"test\": %lld, \"out\": %s}\n", static_cast<long long>(train),
              static_cast<long long>(test), json::quote(out_dir).c_str());
}

struct Gsm8kFlags {
  std::string input, out;

  template <class Visitor>
  void visit(Visitor& v) {
    using namespace opt;
    v(input, "--input", "DIR", "folder holding GSM8K's train.jsonl and test.jsonl", Required{});
    v(out, "--out", "DIR", "output folder (created when missing)", Required{});
  }
};

int data_gsm8k(int argc, char** argv, int first) {
  Args args(
      "zerotune data gsm8k",
      "Converts GSM8K as published (train.jsonl and test.jsonl, one {\"question\", \"answer\"}\n"
      "per line) into the fine-tuning format: train.jsonl and test.jsonl with one\n"
      "{\"input\": \"<START_Q>question<END_Q><START_A>answer<END_A>\"} per line, and\n"
      "tokens.json listing the four markers. Both splits are checked before anything is\n"
      "written. Parquet is not read: convert it to JSON Lines first (pandas or datasets).");
  Gsm8kFlags flags;
  if (!opt::parse_options(args, flags, argc, argv, first)) return 0;
  opt::validate_options(flags, args.command() + ": ");
  const Gsm8kCounts counts = convert_gsm8k(flags.input, flags.out);
  print_summary(counts.train, counts.test, flags.out);
  return 0;
}

struct SynthFlags {
  std::string out;
  int64_t train = 7473;  // GSM8K's split sizes
  int64_t test = 1319;
  int64_t seed = 0;

  template <class Visitor>
  void visit(Visitor& v) {
    using namespace opt;
    v(out, "--out", "DIR", "output folder (created when missing)", Required{});
    v(train, "--train", "N", "train problems (GSM8K's train size)", AtLeast{1});
    v(test, "--test", "M", "test problems (GSM8K's test size)", AtLeast{1});
    v(seed, "--seed", "S", "random seed", NonNegative{});
  }
};

int data_synth(int argc, char** argv, int first) {
  Args args("zerotune data synth",
            "Writes built-in grade-school word problems with worked answers in GSM8K's style\n"
            "(calculator annotations <<48/2=24>> and a final \"#### 24\" line) in the fine-tuning\n"
            "format: train.jsonl, test.jsonl and tokens.json. The same seed gives the same\n"
            "files; no question appears twice, within a split or across them.");
  SynthFlags flags;
  if (!opt::parse_options(args, flags, argc, argv, first)) return 0;
  opt::validate_options(flags, args.command() + ": ");
  const SynthDataset dataset =
      synth_dataset(flags.train, flags.test, static_cast<uint64_t>(flags.seed));
  std::vector<std::string> inputs[2];
  for (const SynthProblem& p : dataset.train) inputs[0].push_back(format_qa(p.question, p.answer));
  for (const SynthProblem& p : dataset.test) inputs[1].push_back(format_qa(p.question, p.answer));
  write_qa_dataset(flags.out, inputs[0], inputs[1]);
  print_summary(flags.train, flags.test, flags.out);
  return 0;
}

}  // namespace

int cmd_data(int argc, char** argv, int first) {
  const char* usage =
      "usage: zerotune data gsm8k|synth [flags]   (zerotune data gsm8k --help for flags)\n"
      "  gsm8k   convert GSM8K (train.jsonl, test.jsonl) into the fine-tuning format\n"
      "  synth   generate built-in GSM8K-style word problems in the fine-tuning format\n";
  if (first >= argc) {
    std::fputs(usage, stderr);
    return 2;
  }
  if (!std::strcmp(argv[first], "gsm8k")) return data_gsm8k(argc, argv, first + 1);
  if (!std::strcmp(argv[first], "synth")) return data_synth(argc, argv, first + 1);
  if (!std::strcmp(argv[first], "--help") || !std::strcmp(argv[first], "-h")) {
    std::fputs(usage, stdout);
    return 0;
  }
  std::fprintf(stderr, "zerotune data: unknown subcommand '%s'\n%s", argv[first], usage);
  return 2;
}

}  // namespace zerotune
