// `zerotune data gsm8k` and `zerotune data synth`: build a fine-tuning dataset folder
// (train.jsonl, test.jsonl, tokens.json) from GSM8K or from the built-in word-problem generator.
#include <cstdio>
#include <cstring>
#include <span>
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

constexpr opt::EnumName<QaFormat> kQaFormatNames[] = {{"markers", QaFormat::markers},
                                                      {"chat", QaFormat::chat}};
std::span<const opt::EnumName<QaFormat>> enum_names(QaFormat) {
  return kQaFormatNames;
}

namespace {

constexpr const char* kFormatHelp =
    "markers: {\"input\": \"<START_Q>q<END_Q><START_A>a<END_A>\"} rows and tokens.json; chat: "
    "{\"messages\": [user, assistant]} rows for instruct models (train renders them with the "
    "model's chat template)";

void print_summary(int64_t train, int64_t test, const std::string& out_dir) {
  std::printf("{\"train\": %lld, \"test\": %lld, \"out\": %s}\n", static_cast<long long>(train),
              static_cast<long long>(test), json::quote(out_dir).c_str());
}

struct Gsm8kFlags {
  std::string input, out;
  QaFormat format = QaFormat::markers;

  template <class Visitor>
  void visit(Visitor& v) {
    using namespace opt;
    v(input, "--input", "DIR", "folder holding GSM8K's train.jsonl and test.jsonl", Required{});
    v(out, "--out", "DIR", "output folder (created when missing)", Required{});
    v(format, "--format", "", kFormatHelp);
  }
};

int data_gsm8k(int argc, char** argv, int first) {
  Args args(
      "zerotune data gsm8k",
      "Converts GSM8K as published (train.jsonl and test.jsonl, one {\"question\", \"answer\"}\n"
      "per line) into the fine-tuning format: train.jsonl and test.jsonl with one\n"
      "{\"input\": \"<START_Q>question<END_Q><START_A>answer<END_A>\"} per line, and\n"
      "tokens.json listing the four markers (or, with --format chat, {\"messages\": [...]}\n"
      "rows for instruct models). Both splits are checked before anything is written.\n"
      "Parquet is not read: convert it to JSON Lines first (pandas or datasets).");
  Gsm8kFlags flags;
  if (!opt::parse_options(args, flags, argc, argv, first)) return 0;
  opt::validate_options(flags, args.command() + ": ");
  const Gsm8kCounts counts = convert_gsm8k(flags.input, flags.out, flags.format);
  print_summary(counts.train, counts.test, flags.out);
  return 0;
}

struct SynthFlags {
  std::string out;
  int64_t train = 7473;  // GSM8K's split sizes
  int64_t test = 1319;
  int64_t seed = 0;
  QaFormat format = QaFormat::markers;

  template <class Visitor>
  void visit(Visitor& v) {
    using namespace opt;
    v(out, "--out", "DIR", "output folder (created when missing)", Required{});
    v(format, "--format", "", kFormatHelp);
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
  std::vector<QaPair> pairs[2];
  for (const SynthProblem& p : dataset.train) pairs[0].push_back({p.question, p.answer});
  for (const SynthProblem& p : dataset.test) pairs[1].push_back({p.question, p.answer});
  write_qa_pairs(flags.out, pairs[0], pairs[1], flags.format);
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
