#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/files.h"
#include "core/timer.h"
#include "data/text_jsonl.h"
#include "data/tokenizer.h"
#include "io/hf_checkpoint.h"
#include "io/json.h"
#include "io/storage/checkpoint_publisher.h"
#include "model/llama.h"
#include "model/resize.h"
#include "train/adamw_optimizer.h"
#include "train/lr_schedule.h"
#include "train/train_state.h"

namespace zerotune {

namespace fs = std::filesystem;

void validate_train_options(const TrainOptions& o) {
  const char* cmd = "zerotune train";
  ZT_CHECK(!o.model_dir.empty(), cmd, ": --model_name is required");
  ZT_CHECK(!o.train_path.empty(), cmd, ": --train_path is required");
  ZT_CHECK(!o.test_path.empty(), cmd, ": --test_path is required");
  ZT_CHECK(!o.output_dir.empty(), cmd, ": --output_dir is required");
  ZT_CHECK(o.batch_size > 0, cmd, ": --batch-size-per-device must be positive, got ", o.batch_size);
  ZT_CHECK(o.eval_batch_size > 0, cmd, ": --eval-batch-size-per-device must be positive, got ",
           o.eval_batch_size);
  ZT_CHECK(o.num_epochs > 0, cmd, ": --num-epochs must be positive, got ", o.num_epochs);
  ZT_CHECK(o.ctx_len > 1, cmd, ": --ctx-len must be at least 2, got ", o.ctx_len);
  ZT_CHECK(o.grad_accum > 0, cmd, ": --grad_accum must be positive, got ", o.grad_accum);
  ZT_CHECK(o.warmup_steps >= 0, cmd, ": --warmup-steps must be >= 0, got ", o.warmup_steps);
  ZT_CHECK(o.max_steps >= 0, cmd, ": --max-steps must be >= 0, got ", o.max_steps);
  ZT_CHECK(std::isfinite(o.lr) && o.lr >= 0.0, cmd, ": --lr must be >= 0, got ", o.lr);
  ZT_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, cmd,
           ": --weight-decay must be >= 0, got ", o.weight_decay);
  ZT_CHECK(std::isfinite(o.grad_clip) && o.grad_clip >= 0.0, cmd,
           ": --grad-clip must be >= 0 (0 = off), got ", o.grad_clip);
  ZT_CHECK(o.stop_perplexity >= 0.0, cmd, ": --stop-perplexity must be >= 0, got ",
           o.stop_perplexity);
  ZT_CHECK(o.keep_checkpoints >= 0, cmd, ": --num-checkpoints-to-keep must be >= 0, got ",
           o.keep_checkpoints);
  ZT_CHECK(o.world_size == 1, cmd, ": ", o.world_size,
           " processes need the MPI launch, which this build does not have yet; use -nd 1");
}

namespace {

struct Dataset {
  std::vector<std::vector<int32_t>> examples;  // <s> ... </s>, truncated to ctx-len
  int64_t truncated = 0;
};

Dataset tokenize_file(const Tokenizer& tok, const std::string& path, int64_t ctx_len) {
  Dataset d;
  for (const std::string& text : read_text_jsonl(path)) {
    bool truncated = false;
    d.examples.push_back(tok.encode_example(text, ctx_len, &truncated));
    d.truncated += truncated;
  }
  return d;
}

std::vector<std::vector<int32_t>> pick(const Dataset& d, const std::vector<int64_t>& order,
                                       int64_t begin, int64_t end) {
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = begin; i < end; ++i) {
    out.push_back(d.examples[static_cast<size_t>(order[static_cast<size_t>(i)])]);
  }
  return out;
}

std::string format_seconds(double s) {
  char buf[32];
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(t / 3600),
                  static_cast<long long>(t % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(t / 60),
                  static_cast<long long>(t % 60));
  }
  return buf;
}

class MetricsLog {
 public:
  MetricsLog(const std::string& path, bool append)
      : out_(path, append ? std::ios::app : std::ios::trunc) {
    ZT_CHECK(out_, path, ": cannot open for writing");
  }
  void write(const json::Value& row) {
    out_ << row.dump() << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

// The run's output folder must not hold another run's results unless resuming them.
void check_output_dir(const TrainOptions& o) {
  if (!fs::exists(o.output_dir)) return;
  ZT_CHECK(fs::is_directory(o.output_dir), o.output_dir, ": exists and is not a directory");
  if (o.resume) return;
  for (const auto& entry : fs::directory_iterator(o.output_dir)) {
    const std::string name = entry.path().filename().string();
    ZT_CHECK(name.rfind("epoch-", 0) != 0 && name != "train_state", o.output_dir,
             " already holds a run (", name,
             "); pass --resume to continue it, or choose another --output_dir");
  }
}

// The settings that change a run's numbers. OpenMP's thread count is among them: reductions
// (norm-weight gradients) sum per-thread partials.
std::string run_fingerprint(const TrainOptions& o) {
  return str("bs=", o.batch_size, " accum=", o.grad_accum, " world=", o.world_size,
             " epochs=", o.num_epochs, " ctx=", o.ctx_len, " lr=", o.lr, " warmup=", o.warmup_steps,
             " max_steps=", o.max_steps, " wd=", o.weight_decay, " clip=", o.grad_clip,
             " shuffle=", o.shuffle, " layout=", static_cast<int>(o.layout),
             " pad=", static_cast<int>(o.pad_mode), " eval_bs=", o.eval_batch_size,
             " threads=", omp_get_max_threads());
}

// Temporary folders of saves that a crash interrupted (`<name>.tmp-<pid>`) are incomplete by
// construction; `.old-<pid>` folders are left alone, as they may be the only complete copy.
void remove_interrupted_saves(const std::string& output_dir) {
  if (!fs::exists(output_dir)) return;
  for (const auto& entry : fs::directory_iterator(output_dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.find(".tmp-") != std::string::npos) {
      std::fprintf(stderr, "zerotune train: removing %s, left by an interrupted save\n",
                   entry.path().c_str());
      fs::remove_all(entry.path());
    }
  }
}

// On resume, drops metric rows written after the saved state (a crash mid-epoch), so that the
// replayed steps are not listed twice.
void trim_metrics(const std::string& path, const LoopState& loop) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const json::Value row = json::parse_line(line, path, line_no);
    const json::Value* step = row.find("step");
    const json::Value* epoch = row.find("epoch");
    const bool keep = step ? step->as_int64(path + ": step") <= loop.global_step
                           : epoch && epoch->as_int64(path + ": epoch") <= loop.epochs_done;
    if (keep) kept += line + "\n";
  }
  in.close();
  write_file_atomically(path, kept);
}

double finite_or_fail(double value, const char* what, int64_t step) {
  ZT_CHECK(std::isfinite(value), "zerotune train: ", what, " is ", value, " at step ", step,
           "; training diverged (try a lower --lr or --grad-clip)");
  return value;
}

}  // namespace

int run_training(const TrainOptions& o) {
  validate_train_options(o);
  check_output_dir(o);
  const bool tty = isatty(2);
  Timer total_timer;

  // Model, tokenizer, vocabulary.
  LoadedHfFolder folder = read_hf_folder(o.model_dir);
  ZT_CHECK(folder.tokenizer.has_value(), o.model_dir,
           ": no tokenizer.model; the fine-tuning job tokenises with the model's tokenizer");
  Tokenizer tokenizer = Tokenizer::from_files(*folder.tokenizer);
  if (!o.special_token_path.empty()) {
    tokenizer.add_special_tokens(read_special_tokens_json(o.special_token_path));
  }
  LlamaParams params = std::move(folder.params);
  if (tokenizer.vocab_size() > params.config().vocab_size) {
    std::fprintf(stderr, "zerotune train: growing the vocabulary %lld -> %lld for added tokens\n",
                 static_cast<long long>(params.config().vocab_size),
                 static_cast<long long>(tokenizer.vocab_size()));
    params = resize_vocab(params, tokenizer.vocab_size(), o.seed);
  }
  const LlamaConfig config = params.config();
  ZT_CHECK(o.ctx_len <= config.max_position_embeddings, "zerotune train: --ctx-len ", o.ctx_len,
           " exceeds the model's max_position_embeddings ", config.max_position_embeddings);

  // Data.
  const Dataset train = tokenize_file(tokenizer, o.train_path, o.ctx_len);
  const Dataset test = tokenize_file(tokenizer, o.test_path, o.ctx_len);
  const int32_t pad_id = tokenizer.pad_id();
  const int64_t n_train = static_cast<int64_t>(train.examples.size());
  const int64_t global_batch = o.batch_size * o.grad_accum * o.world_size;
  const int64_t steps_per_epoch = (n_train + global_batch - 1) / global_batch;
  int64_t total_steps = steps_per_epoch * o.num_epochs;
  if (o.max_steps > 0) total_steps = std::min(total_steps, o.max_steps);
  std::fprintf(stderr,
               "zerotune train: %s, %lld train / %lld test examples (%lld / %lld truncated to "
               "%lld tokens), %lld steps of %lld examples\n",
               config.summary().c_str(), static_cast<long long>(n_train),
               static_cast<long long>(test.examples.size()),
               static_cast<long long>(train.truncated), static_cast<long long>(test.truncated),
               static_cast<long long>(o.ctx_len), static_cast<long long>(total_steps),
               static_cast<long long>(global_batch));

  LlamaModel model(std::move(params), o.grad_ckpt ? Checkpointing::per_layer : Checkpointing::off);
  AdamWConfig adam;
  adam.weight_decay = o.weight_decay;
  AdamWOptimizer optimizer(model.params(), adam);

  fs::create_directories(o.output_dir);
  const std::string state_dir = (fs::path(o.output_dir) / "train_state").string();
  LoopState loop;
  loop.total_steps = total_steps;
  loop.seed = o.seed;
  loop.fingerprint = run_fingerprint(o);
  remove_interrupted_saves(o.output_dir);
  const std::string metrics_path = (fs::path(o.output_dir) / "metrics.jsonl").string();
  if (o.resume) {
    loop = load_train_state(state_dir, model.params(), optimizer);
    ZT_CHECK(loop.total_steps == total_steps && loop.seed == o.seed &&
                 loop.fingerprint == run_fingerprint(o),
             state_dir, ": the state is for a run with seed ", loop.seed, " and {",
             loop.fingerprint, "}, not seed ", o.seed, " and {", run_fingerprint(o),
             "}; resume with the same flags and OMP_NUM_THREADS");
    trim_metrics(metrics_path, loop);
    std::fprintf(stderr, "zerotune train: resuming after epoch %lld, step %lld\n",
                 static_cast<long long>(loop.epochs_done),
                 static_cast<long long>(loop.global_step));
  }
  MetricsLog metrics(metrics_path, o.resume);

  DType save_dtype = o.save_dtype;
  if (!o.save_dtype_given) {
    const std::string& t = config.torch_dtype;
    save_dtype = t == "bfloat16" ? DType::bf16 : t == "float16" ? DType::f16 : DType::f32;
  }
  const TokenizerFiles tokenizer_files = tokenizer.files();

  auto evaluate = [&]() {
    double loss_sum = 0.0;
    int64_t count = 0;
    const std::vector<int64_t> order =
        epoch_order(static_cast<int64_t>(test.examples.size()), false, 0, 0);
    for (int64_t b = 0; b < static_cast<int64_t>(order.size()); b += o.eval_batch_size) {
      const int64_t e =
          std::min<int64_t>(static_cast<int64_t>(order.size()), b + o.eval_batch_size);
      const TokenBatch batch =
          make_micro_batch(pick(test, order, b, e), pad_id, o.ctx_len, o.layout, o.pad_mode);
      const CrossEntropyResult r = model.forward_loss(batch);
      loss_sum += r.loss_sum;
      count += r.count;
    }
    return count ? loss_sum / static_cast<double>(count) : 0.0;
  };

  bool stop = false;
  std::string stop_reason = "all epochs done";
  for (int64_t epoch = loop.epochs_done; epoch < o.num_epochs && !stop; ++epoch) {
    if (loop.global_step >= total_steps && !o.as_test) break;
    const std::vector<int64_t> order = epoch_order(n_train, o.shuffle, o.seed, epoch);
    Timer epoch_timer;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      if (loop.global_step >= total_steps) break;
      Timer step_timer;
      const int64_t begin = s * global_batch;
      const int64_t end = std::min(n_train, begin + global_batch);
      std::vector<TokenBatch> micro;
      int64_t tokens = 0;
      for (int64_t m = begin; m < end; m += o.batch_size) {
        micro.push_back(make_micro_batch(pick(train, order, m, std::min(end, m + o.batch_size)),
                                         pad_id, o.ctx_len, o.layout, o.pad_mode));
        tokens += micro.back().count_targets();
        if (o.as_test) break;  // one forward and backward
      }
      model.grads().zero();
      double loss_sum = 0.0;
      for (const TokenBatch& mb : micro) {
        loss_sum +=
            model.forward_backward(mb, tokens ? 1.0f / static_cast<float>(tokens) : 0.0f).loss_sum;
      }
      const double grad_norm = finite_or_fail(global_grad_norm(model.grads()), "the gradient norm",
                                              loop.global_step + 1);
      if (o.grad_clip > 0.0) {
        // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1.
        const double coef = o.grad_clip / (grad_norm + 1e-6);
        if (coef < 1.0) scale_grads(model.grads(), static_cast<float>(coef));
      }
      const double lr = o.lr * linear_warmup_decay(loop.global_step, o.warmup_steps, total_steps);
      optimizer.step(model.params(), model.grads(), lr);
      ++loop.global_step;
      const double step_time = step_timer.seconds();
      const double loss = finite_or_fail(tokens ? loss_sum / static_cast<double>(tokens) : 0.0,
                                         "the loss", loop.global_step);
      json::Value row = json::Value::object();
      row.set("type", "train");
      row.set("step", loop.global_step);
      row.set("epoch", epoch + 1);
      row.set("loss", loss);
      row.set("lr", lr);
      row.set("grad_norm", grad_norm);
      row.set("tokens", tokens);
      row.set("tokens_per_s", static_cast<double>(tokens) / step_time);
      row.set("step_time_s", step_time);
      metrics.write(row);
      const double eta = epoch_timer.seconds() / static_cast<double>(s + 1) *
                         static_cast<double>(total_steps - loop.global_step);
      std::fprintf(
          stderr,
          "%sstep %lld/%lld epoch %lld loss %.4f lr %.3g grad_norm %.3f %.0f tok/s ETA %s%s",
          tty ? "\r" : "", static_cast<long long>(loop.global_step),
          static_cast<long long>(total_steps), static_cast<long long>(epoch + 1), loss, lr,
          grad_norm, static_cast<double>(tokens) / step_time, format_seconds(eta).c_str(),
          tty ? "   " : "\n");
      if (o.as_test) break;
    }
    if (tty) std::fputc('\n', stderr);
    const double train_time = epoch_timer.seconds();

    Timer eval_timer;
    // --as-test checks the training and checkpoint paths only: no evaluation is run or reported.
    const double eval_loss =
        o.as_test ? 0.0 : finite_or_fail(evaluate(), "the eval loss", loop.global_step);
    const double perplexity = std::exp(eval_loss);  // +inf past loss 709: written as null
    if (!o.as_test) {
      json::Value row = json::Value::object();
      row.set("type", "eval");
      row.set("epoch", epoch + 1);
      row.set("eval_loss", eval_loss);
      row.set("perplexity", std::isfinite(perplexity) ? json::Value(perplexity) : json::Value());
      row.set("train_time_s", train_time);
      row.set("eval_time_s", eval_timer.seconds());
      metrics.write(row);
      std::fprintf(stderr, "epoch %lld: eval loss %.4f perplexity %.4f\n",
                   static_cast<long long>(epoch + 1), eval_loss, perplexity);
    }

    // Checkpoint, then keep the best n by perplexity (ties: the earlier epoch stays).
    const std::string ckpt =
        (fs::path(o.output_dir) / ("epoch-" + std::to_string(epoch + 1))).string();
    HfCheckpointOptions save;
    save.save_dtype = save_dtype;
    write_hf_checkpoint(ckpt, model.params(), folder.raw_config, &tokenizer_files, save);
    if (o.publisher) o.publisher->publish_folder("epoch-" + std::to_string(epoch + 1));
    loop.checkpoints.emplace_back(perplexity, epoch + 1);
    std::stable_sort(loop.checkpoints.begin(), loop.checkpoints.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    if (o.keep_checkpoints > 0) {
      while (static_cast<int64_t>(loop.checkpoints.size()) > o.keep_checkpoints) {
        const int64_t dropped = loop.checkpoints.back().second;
        fs::remove_all(fs::path(o.output_dir) / ("epoch-" + std::to_string(dropped)));
        if (o.publisher) o.publisher->remove_folder("epoch-" + std::to_string(dropped));
        loop.checkpoints.pop_back();
      }
    }
    loop.epochs_done = epoch + 1;
    if (!o.as_test) save_train_state(state_dir, model.params(), optimizer, loop);
    if (o.publisher) o.publisher->publish_file("metrics.jsonl");

    if (o.as_test) {
      stop = true;
      stop_reason = "--as-test";
    } else if (o.stop_perplexity > 0.0 && perplexity < o.stop_perplexity) {
      stop = true;
      stop_reason = str("perplexity ", perplexity, " below --stop-perplexity ", o.stop_perplexity);
    } else if (o.stop_after_epochs > 0 && epoch + 1 >= o.stop_after_epochs &&
               epoch + 1 < o.num_epochs) {
      stop = true;
      stop_reason = str("--stop-after-epochs ", o.stop_after_epochs, " (continue with --resume)");
    }
  }
  if (o.publisher) o.publisher->finish();  // throws, naming each object, if an upload failed
  if (o.as_test) {
    std::fprintf(stderr, "zerotune train: --as-test done in %s; checkpoint %s/epoch-%lld\n",
                 format_seconds(total_timer.seconds()).c_str(), o.output_dir.c_str(),
                 static_cast<long long>(loop.epochs_done));
  } else if (!loop.checkpoints.empty()) {
    const auto& best = loop.checkpoints.front();
    std::fprintf(
        stderr, "zerotune train: done (%s) in %s; best checkpoint %s/epoch-%lld, perplexity %.4f\n",
        stop_reason.c_str(), format_seconds(total_timer.seconds()).c_str(), o.output_dir.c_str(),
        static_cast<long long>(best.second), best.first);
  }
  return 0;
}

}  // namespace zerotune
