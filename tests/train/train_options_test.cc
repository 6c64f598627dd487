// TrainOptions as `zerotune train` reads it: the spellings of the Python job it replaces, the
// documented defaults (README), every rule's message, and --help.
#include "train/train_options.h"

#include <gtest/gtest.h>

#include <set>

#include "../cli/test_argv.h"
#include "cli/options.h"
#include "core/device.h"

namespace zerotune {
namespace {

using testing::Argv;

const std::vector<std::string> kRequired = {"--model_name", "m", "--train_path", "train.jsonl",
                                            "--test_path",  "t", "--output_dir", "out"};

// Parsed, with the dependent defaults filled in, as cmd_train does before --ds-config.
TrainOptions parse_train(std::vector<std::string> flags, bool with_required = true) {
  if (with_required) flags.insert(flags.begin(), kRequired.begin(), kRequired.end());
  Args args("zerotune train", "");
  TrainOptions o;
  Argv argv(flags);
  EXPECT_TRUE(opt::parse_options(args, o, argv.argc(), argv.data(), 1));
  fill_dependent_defaults(o);
  return o;
}

// The message with which parsing or validating these flags fails; empty when they pass.
std::string refusal(std::vector<std::string> flags) {
  return error_of([&] { validate_train_options(parse_train(std::move(flags))); });
}

std::string train_help() {
  Args args("zerotune train", "");
  TrainOptions o;
  opt::ArgsDeclarer declarer(args);
  o.visit(declarer);
  return args.help();
}

TEST(TrainOptions, DefaultsAreTheDocumentedOnes) {
  const TrainOptions o = parse_train({});
  EXPECT_EQ(o.batch_size, 16);
  EXPECT_EQ(o.eval_batch_size, 64);
  EXPECT_EQ(o.num_epochs, 1);
  EXPECT_EQ(o.lr, 5e-6);
  EXPECT_EQ(o.ctx_len, 512);
  EXPECT_EQ(o.grad_accum, 1);
  EXPECT_EQ(o.warmup_steps, 10);
  EXPECT_EQ(o.max_steps, 0);
  EXPECT_EQ(o.weight_decay, 0.0);
  EXPECT_EQ(o.grad_clip, 1.0);
  EXPECT_EQ(o.stop_perplexity, 0.0);
  EXPECT_EQ(o.keep_checkpoints, 0);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_EQ(o.world_size, 1);
  EXPECT_EQ(o.zero_stage, 3);
  EXPECT_EQ(o.param_persistence_threshold, 100000);
  EXPECT_EQ(o.offload_optimizer, OptimizerOffload::none);
  EXPECT_EQ(o.collective_timeout_s, 600.0);
  EXPECT_EQ(o.device, ComputeDevice::automatic);
  EXPECT_EQ(o.mixed_precision, MixedPrecision::bf16);
  EXPECT_FALSE(o.save_dtype_given);
  EXPECT_TRUE(o.shuffle && o.grad_ckpt);
  EXPECT_FALSE(o.as_test || o.resume);
  EXPECT_EQ(o.layout, Layout::padded);
  EXPECT_EQ(o.pad_mode, PadMode::to_ctx_len);
  EXPECT_EQ(refusal({}), "");
}

TEST(TrainOptions, ReadsThePythonJobsSpellings) {
  const TrainOptions o = parse_train({"--model_name",
                                      "org/llama",
                                      "--train_path",
                                      "a.jsonl",
                                      "--test_path",
                                      "b.jsonl",
                                      "--special_token_path",
                                      "tokens.json",
                                      "--output_dir",
                                      "runs/x",
                                      "--grad_accum",
                                      "4",
                                      "-bs",
                                      "2",
                                      "-nd",
                                      "3",
                                      "--ctx-len",
                                      "256",
                                      "--num-epochs",
                                      "5",
                                      "--lr",
                                      "1e-4",
                                      "--eval-batch-size-per-device",
                                      "8",
                                      "--as-test",
                                      "--mx",
                                      "no",
                                      "--num-checkpoints-to-keep",
                                      "2",
                                      "--stop-perplexity",
                                      "1.5",
                                      "--no-grad-ckpt"},
                                     false);
  EXPECT_EQ(o.model_dir, "org/llama");
  EXPECT_EQ(o.train_path, "a.jsonl");
  EXPECT_EQ(o.test_path, "b.jsonl");
  EXPECT_EQ(o.special_token_path, "tokens.json");
  EXPECT_EQ(o.output_dir, "runs/x");
  EXPECT_EQ(o.grad_accum, 4);
  EXPECT_EQ(o.batch_size, 2);
  EXPECT_EQ(o.world_size, 3);
  EXPECT_EQ(o.ctx_len, 256);
  EXPECT_EQ(o.num_epochs, 5);
  EXPECT_EQ(o.lr, 1e-4);
  EXPECT_EQ(o.eval_batch_size, 8);
  EXPECT_TRUE(o.as_test);
  EXPECT_EQ(o.mixed_precision, MixedPrecision::no);
  EXPECT_EQ(o.keep_checkpoints, 2);
  EXPECT_EQ(o.stop_perplexity, 1.5);
  EXPECT_FALSE(o.grad_ckpt);
  // The Python job's long forms of -bs and -nd.
  const TrainOptions l = parse_train({"--batch-size-per-device", "6", "--num-devices", "2"});
  EXPECT_EQ(l.batch_size, 6);
  EXPECT_EQ(l.world_size, 2);
}

TEST(TrainOptions, AcceptsTheDashedAliasesOfUnderscoredFlags) {
  const TrainOptions o =
      parse_train({"--model-name", "m2", "--train-path", "a", "--test-path", "b",
                   "--special-token-path", "s", "--output-dir", "o2", "--grad-accum", "3"},
                  false);
  EXPECT_EQ(o.model_dir, "m2");
  EXPECT_EQ(o.train_path, "a");
  EXPECT_EQ(o.test_path, "b");
  EXPECT_EQ(o.special_token_path, "s");
  EXPECT_EQ(o.output_dir, "o2");
  EXPECT_EQ(o.grad_accum, 3);
}

TEST(TrainOptions, ReadsEveryOtherFlagIntoItsType) {
  const TrainOptions o = parse_train({"--warmup-steps",
                                      "3",
                                      "--max-steps",
                                      "17",
                                      "--weight-decay",
                                      "0.01",
                                      "--grad-clip",
                                      "0",
                                      "--seed",
                                      "7",
                                      "--save-dtype",
                                      "bf16",
                                      "--stop-after-epochs",
                                      "1",
                                      "--zero-stage",
                                      "2",
                                      "--param-persistence-threshold",
                                      "5",
                                      "--offload-optimizer",
                                      "nvme",
                                      "--nvme-path",
                                      "/nv",
                                      "--device",
                                      "cpu",
                                      "--collective-timeout",
                                      "30.5",
                                      "--no-shuffle",
                                      "--resume",
                                      "--packing"});
  EXPECT_EQ(o.warmup_steps, 3);
  EXPECT_EQ(o.max_steps, 17);
  EXPECT_EQ(o.weight_decay, 0.01);
  EXPECT_EQ(o.grad_clip, 0.0);
  EXPECT_EQ(o.seed, 7u);
  EXPECT_EQ(o.save_dtype, DType::bf16);
  EXPECT_TRUE(o.save_dtype_given);
  EXPECT_EQ(o.stop_after_epochs, 1);
  EXPECT_EQ(o.zero_stage, 2);
  EXPECT_EQ(o.param_persistence_threshold, 5);
  EXPECT_EQ(o.offload_optimizer, OptimizerOffload::nvme);
  EXPECT_EQ(o.nvme_path, "/nv");
  EXPECT_EQ(o.device, ComputeDevice::cpu);
  EXPECT_EQ(o.collective_timeout_s, 30.5);
  EXPECT_FALSE(o.shuffle);
  EXPECT_TRUE(o.resume);
  EXPECT_EQ(o.layout, Layout::packed);
  EXPECT_EQ(parse_train({"--pad-to-longest"}).pad_mode, PadMode::to_longest);
  EXPECT_EQ(parse_train({"--mx", "fp16"}).mixed_precision, MixedPrecision::fp16);
  EXPECT_EQ(parse_train({"--offload-optimizer", "cpu"}).offload_optimizer, OptimizerOffload::cpu);
}

TEST(TrainOptions, WarmupDefaultsToTenStepsPerDevice) {
  EXPECT_EQ(parse_train({"-nd", "4"}).warmup_steps, 40);
  EXPECT_EQ(parse_train({"-nd", "4", "--warmup-steps", "3"}).warmup_steps, 3);
  EXPECT_EQ(parse_train({"-nd", "4", "--warmup-steps", "10"}).warmup_steps, 10);
  // A world size that is not positive is reported as itself, not as a negative warm-up.
  EXPECT_EQ(refusal({"-nd", "-2"}), "zerotune train: -nd must be positive, got -2");
}

TEST(TrainOptions, EveryRuleRefusesNamingTheFlagAndTheValue) {
  const std::string p = "zerotune train: ";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-bs", "0"}, "--batch-size-per-device must be positive, got 0"},
      {{"--eval-batch-size-per-device", "-1"},
       "--eval-batch-size-per-device must be positive, got -1"},
      {{"--num-epochs", "0"}, "--num-epochs must be positive, got 0"},
      {{"--ctx-len", "1"}, "--ctx-len must be at least 2, got 1"},
      {{"--grad_accum", "0"}, "--grad_accum must be positive, got 0"},
      {{"--lr", "-1"}, "--lr must be >= 0, got -1"},
      {{"--lr", "inf"}, "--lr must be finite, got inf"},
      {{"--warmup-steps", "-1"}, "--warmup-steps must be >= 0, got -1"},
      {{"--max-steps", "-5"}, "--max-steps must be >= 0, got -5"},
      {{"--weight-decay", "-0.5"}, "--weight-decay must be >= 0, got -0.5"},
      {{"--weight-decay", "nan"}, "--weight-decay must be finite, got nan"},
      {{"--grad-clip", "-1"}, "--grad-clip must be >= 0 (0 = off), got -1"},
      {{"--stop-perplexity", "-1"}, "--stop-perplexity must be >= 0, got -1"},
      {{"--num-checkpoints-to-keep", "-1"}, "--num-checkpoints-to-keep must be >= 0, got -1"},
      {{"-nd", "0"}, "-nd must be positive, got 0"},
      {{"--zero-stage", "4"}, "--zero-stage must be 0-3, got 4"},
      {{"--zero-stage", "-1"}, "--zero-stage must be 0-3, got -1"},
      {{"--param-persistence-threshold", "-1"},
       "--param-persistence-threshold must be >= 0, got -1"},
      {{"--collective-timeout", "0"}, "--collective-timeout must be positive, got 0"},
      {{"--mx", "fp8"}, "--mx must be no, bf16 or fp16, got 'fp8'"},
      {{"--offload-optimizer", "disk"},
       "--offload-optimizer must be none, cpu or nvme, got 'disk'"},
      {{"--device", "gpu"}, "--device must be cpu or cuda, got 'gpu'"},
      {{"--device", "automatic"}, "--device must be cpu or cuda, got 'automatic'"},
      {{"--save-dtype", "i32"}, "--save-dtype must be f32, bf16 or f16, got 'i32'"},
      {{"--seed", "x"}, "--seed expects an integer, got 'x'"},
      {{"--lr", "fast"}, "--lr expects a number, got 'fast'"},
      {{"--zero-stage", "4294967296"}, "--zero-stage expects an integer, got '4294967296'"},
  };
  for (const auto& [flags, message] : cases) EXPECT_EQ(refusal(flags), p + message);
  // Limits themselves pass.
  EXPECT_EQ(refusal({"--ctx-len", "2", "--lr", "0", "--grad-clip", "0", "--zero-stage", "0",
                     "--stop-perplexity", "inf", "--collective-timeout", "inf"}),
            "");
}

TEST(TrainOptions, RequiredOptionsAreNamed) {
  for (const std::string flag : {"--model_name", "--train_path", "--test_path", "--output_dir"}) {
    std::vector<std::string> flags;
    for (size_t i = 0; i < kRequired.size(); i += 2) {
      if (kRequired[i] != flag) flags.insert(flags.end(), {kRequired[i], kRequired[i + 1]});
    }
    EXPECT_EQ(error_of([&] { validate_train_options(parse_train(flags, false)); }),
              "zerotune train: " + flag + " is required");
  }
}

TEST(TrainOptions, RulesAcrossOptions) {
  EXPECT_EQ(refusal({"--packing", "--pad-to-longest"}),
            "zerotune train: --packing and --pad-to-longest exclude each other");
  EXPECT_EQ(refusal({"--offload-optimizer", "nvme"}),
            "zerotune train: --offload-optimizer nvme needs --nvme-path DIR");
  EXPECT_EQ(refusal({"--offload-optimizer", "nvme", "--nvme-path", "/nv"}), "");
  const std::string cuda = refusal({"--device", "cuda"});
  if (cuda_backend_built()) {
    EXPECT_EQ(cuda, "");
  } else {
    EXPECT_EQ(cuda,
              "zerotune train: --device cuda needs the CUDA build "
              "(scripts/build.sh --cuda: build-cuda/zerotune)");
  }
}

template <class E>
void expect_names_round_trip(std::set<std::string> want) {
  std::set<std::string> names;
  for (const opt::EnumName<E>& entry : enum_names(E{})) {
    EXPECT_EQ(name_of(entry.value), std::string(entry.name));
    E parsed{};
    ASSERT_TRUE(opt::parse_name(name_of(entry.value), &parsed)) << entry.name;
    EXPECT_EQ(parsed, entry.value) << entry.name;
    names.insert(entry.name);
  }
  EXPECT_EQ(names, want);
}

TEST(TrainOptions, EnumNamesRoundTrip) {
  expect_names_round_trip<ComputeDevice>({"automatic", "cpu", "cuda"});
  expect_names_round_trip<MixedPrecision>({"no", "bf16", "fp16"});
  expect_names_round_trip<OptimizerOffload>({"none", "cpu", "nvme"});
}

// Every flag `zerotune train` had before its options were declared by TrainOptions::visit (less
// --ds-config and --local-dir, which the command adds); the first spelling is the listed one.
const std::vector<std::string> kEveryFlag = {"--model_name",
                                             "--train_path",
                                             "--test_path",
                                             "--special_token_path",
                                             "--output_dir",
                                             "--batch-size-per-device",
                                             "--eval-batch-size-per-device",
                                             "--num-epochs",
                                             "--lr",
                                             "--ctx-len",
                                             "--grad_accum",
                                             "--warmup-steps",
                                             "--max-steps",
                                             "--weight-decay",
                                             "--grad-clip",
                                             "--mx",
                                             "--stop-perplexity",
                                             "--num-checkpoints-to-keep",
                                             "--seed",
                                             "--save-dtype",
                                             "--eval-accuracy",
                                             "--eval-max-new-tokens",
                                             "--checkpoint-metric",
                                             "-nd",
                                             "--zero-stage",
                                             "--param-persistence-threshold",
                                             "--offload-optimizer",
                                             "--nvme-path",
                                             "--device",
                                             "--collective-timeout",
                                             "--stop-after-epochs",
                                             "--no-grad-ckpt",
                                             "--no-shuffle",
                                             "--as-test",
                                             "--resume",
                                             "--packing",
                                             "--pad-to-longest",
                                             "--lora",
                                             "--lora-config",
                                             "--adapter"};

TEST(TrainOptions, HelpListsEveryOptionExactlyOnce) {
  const std::string help = train_help();
  for (const std::string& flag : kEveryFlag) {
    EXPECT_EQ(testing::count_entries(help, "  " + flag), 1) << flag;
  }
  // One entry per option, and nothing else but -h.
  int entries = 0;
  for (size_t at = help.find("\n  -"); at != std::string::npos; at = help.find("\n  -", at + 1)) {
    ++entries;
  }
  EXPECT_EQ(entries, static_cast<int>(kEveryFlag.size()) + 1);
  EXPECT_NE(testing::help_entry(help, "-nd").find("-nd, --num-devices N"), std::string::npos);
  EXPECT_NE(testing::help_entry(help, "--batch-size-per-device").find("-bs B"), std::string::npos);
}

TEST(TrainOptions, HelpShowsDefaultsAndMarksThePythonSpellings) {
  const std::string help = train_help();
  using testing::help_entry;
  const std::set<std::string> python = {"--model_name",
                                        "--train_path",
                                        "--test_path",
                                        "--special_token_path",
                                        "--output_dir",
                                        "--grad_accum",
                                        "--batch-size-per-device",
                                        "-nd",
                                        "--ctx-len",
                                        "--num-epochs",
                                        "--lr",
                                        "--eval-batch-size-per-device",
                                        "--as-test",
                                        "--mx",
                                        "--num-checkpoints-to-keep",
                                        "--stop-perplexity",
                                        "--no-grad-ckpt",
                                        "--lora"};
  for (const std::string& flag : kEveryFlag) {
    const bool marked = help_entry(help, flag).find("as the Python job") != std::string::npos;
    EXPECT_EQ(marked, python.count(flag) > 0) << flag;
  }
  const std::vector<std::pair<std::string, std::string>> aliases = {
      {"--model_name", "--model-name"}, {"--train_path", "--train-path"},
      {"--test_path", "--test-path"},   {"--special_token_path", "--special-token-path"},
      {"--output_dir", "--output-dir"}, {"--grad_accum", "--grad-accum"}};
  for (const auto& [flag, alias] : aliases) {
    EXPECT_NE(help_entry(help, flag).find("alias " + alias), std::string::npos) << alias;
    EXPECT_EQ(help.find(alias), help.rfind(alias)) << alias;  // named once
  }
  EXPECT_NE(help_entry(help, "--batch-size-per-device").find("(default: 16)"), std::string::npos);
  EXPECT_NE(help_entry(help, "--lr").find("(default: 5e-06; 1e-04 with --lora)"),
            std::string::npos);
  EXPECT_NE(help_entry(help, "--mx").find("--mx no|bf16|fp16"), std::string::npos);
  EXPECT_NE(help_entry(help, "--mx").find("(default: bf16)"), std::string::npos);
  EXPECT_NE(help_entry(help, "--offload-optimizer").find("none|cpu|nvme"), std::string::npos);
  EXPECT_NE(help_entry(help, "--device").find("--device cpu|cuda"), std::string::npos);
  EXPECT_NE(help_entry(help, "--save-dtype").find("--save-dtype f32|bf16|f16"), std::string::npos);
  EXPECT_NE(help_entry(help, "--warmup-steps").find("(default: 10 x -nd)"), std::string::npos);
  EXPECT_NE(help_entry(help, "--model_name").find("required"), std::string::npos);
}

// The Python job's LoRA runs use 1e-4; full fine-tuning keeps 5e-6. --adapter implies --lora.
TEST(TrainOptions, LoraDefaultsTheLearningRate) {
  EXPECT_EQ(parse_train({}).lr, 5e-6);
  EXPECT_EQ(parse_train({"--lora"}).lr, 1e-4);
  EXPECT_EQ(parse_train({"--lora", "--lr", "3e-4"}).lr, 3e-4);
  const TrainOptions adapter = parse_train({"--adapter", "dir"});
  EXPECT_TRUE(adapter.lora);
  EXPECT_EQ(adapter.lr, 1e-4);
  EXPECT_NE(refusal({"--lora-config", "c.json"}).find("--lora-config needs --lora"),
            std::string::npos);
  EXPECT_NE(refusal({"--adapter", "a", "--lora-config", "c.json"}).find("drop --lora-config"),
            std::string::npos);
}

}  // namespace
}  // namespace zerotune
