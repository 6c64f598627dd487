#include "eval/gsm8k_eval.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "core/check.h"
#include "core/json.h"
#include "data/text_jsonl.h"
#include "eval/gsm8k_score.h"

namespace zerotune {
namespace {

constexpr const char* kEndA = "<END_A>";

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = byte(i);
  const size_t n = b < 0x80           ? 1
                   : (b >> 5) == 0x6  ? 2
                   : (b >> 4) == 0xE  ? 3
                   : (b >> 3) == 0x1E ? 4
                                      : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = n == 1 ? b : b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (byte(i + k) & 0x3F);
  }
  const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < smallest[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// `s` with every byte that starts no valid UTF-8 sequence replaced by U+FFFD, as Python decodes
// with errors="replace": byte-fallback tokens of a half-trained model need not form characters.
std::string valid_utf8(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    out += n ? s.substr(i, n) : std::string_view("\xEF\xBF\xBD");
    i += n ? n : 1;
  }
  return out;
}

// Seed: stop at </s> or <END_A> (its id when the tokenizer has it as a token, else as text);
// lm-eval: </s> and the harness's `until` strings.
GreedyOptions decode_options(const Tokenizer& tokenizer, const EvalSettings& settings) {
  GreedyOptions o;
  o.max_new_tokens = settings.max_new_tokens;
  o.batch_size = settings.batch_size;
  o.eos_id = tokenizer.eos_id();
  if (settings.format == EvalFormat::lm_eval) {
    o.stop_strings = lm_eval_stop_strings();
    return o;
  }
  const std::vector<std::string>& added = tokenizer.added_tokens();
  if (std::find(added.begin(), added.end(), kEndA) != added.end()) {
    o.stop_ids.push_back(tokenizer.piece_to_id(kEndA));
  } else {
    o.stop_strings.push_back(kEndA);
  }
  return o;
}

std::vector<FilterResult> score(EvalFormat format, const std::string& completion,
                                const EvalItem& item) {
  if (format == EvalFormat::seed) {
    FilterResult r;
    r.extracted = final_answer(completion);
    r.correct = r.extracted && item.reference_number && *r.extracted == *item.reference_number;
    return {r};
  }
  std::vector<FilterResult> results;
  for (const std::string& value :
       {harness_strict_match(completion), harness_flexible_extract(completion)}) {
    FilterResult r;
    if (value != kHarnessInvalid) r.extracted = value;
    r.correct = harness_exact_match(value, item.reference);
    results.push_back(r);
  }
  return results;
}

}  // namespace

std::vector<std::string> filter_names(EvalFormat format) {
  if (format == EvalFormat::seed) return {"exact_match"};
  return {"strict-match", "flexible-extract"};
}

std::vector<std::vector<int32_t>> encode_prompts(const Tokenizer& tokenizer,
                                                 const std::vector<EvalItem>& items,
                                                 int64_t model_vocab) {
  std::vector<std::vector<int32_t>> prompts;
  for (const EvalItem& item : items) {
    std::vector<int32_t> ids{tokenizer.bos_id()};
    for (const int32_t id : tokenizer.encode(item.prompt)) {
      ZT_CHECK(id < model_vocab, item.where, ": the prompt encodes to token id ", id,
               " but the model's vocabulary has ", model_vocab,
               " ids (pass the --special_token_path the model was trained with)");
      ids.push_back(id);
    }
    prompts.push_back(std::move(ids));
  }
  return prompts;
}

OnProgress eval_progress_line(int64_t total, const Timer& timer) {
  const bool tty = isatty(2);
  return [total, &timer, tty](const EvalCounts& n) {
    const int64_t every = std::max<int64_t>(1, total / 10);
    if (!tty && n.done % every != 0 && n.done != total) return;
    const double elapsed = timer.seconds();
    const double eta = elapsed / static_cast<double>(n.done) * static_cast<double>(total - n.done);
    const double accuracy =
        n.scored > 0 ? static_cast<double>(n.correct.at(0)) / static_cast<double>(n.scored) : 0.0;
    std::fprintf(stderr, "%seval %lld/%lld accuracy %.4f (%lld/%lld) %.2f examples/s ETA %s%s",
                 tty ? "\r" : "", static_cast<long long>(n.done), static_cast<long long>(total),
                 accuracy, static_cast<long long>(n.correct.at(0)),
                 static_cast<long long>(n.scored), static_cast<double>(n.done) / elapsed,
                 clock_text(eta).c_str(), tty ? "   " : "\n");
    if (tty && n.done == total) std::fputc('\n', stderr);
  };
}

EvalOutcome evaluate_items(const LlamaParams& params, const Tokenizer& tokenizer,
                           const std::vector<EvalItem>& items, const EvalSettings& settings,
                           const OnProgress& on_progress) {
  EvalOutcome out;
  out.filter_names = filter_names(settings.format);
  out.counts.correct.assign(out.filter_names.size(), 0);
  out.predictions.resize(items.size());
  const std::vector<std::vector<int32_t>> prompts =
      encode_prompts(tokenizer, items, params.config().vocab_size);
  const DecodeIds decode = [&tokenizer](const std::vector<int32_t>& ids) {
    std::vector<int32_t> known;  // rows of a padded embedding beyond the tokenizer have no text
    for (const int32_t id : ids) {
      if (id < tokenizer.vocab_size()) known.push_back(id);
    }
    return valid_utf8(tokenizer.decode(known, BosEos::skip));
  };
  const OnCompletion scored = [&](size_t i, const Completion& c) {
    const EvalItem& item = items[i];
    Prediction& p = out.predictions[i];
    p.index = item.index;
    p.prompt = item.prompt;
    p.reference = item.reference;
    p.completion = c.text;
    p.tokens = c.tokens;
    p.filters = score(settings.format, c.text, item);
    // The harness scores every row; the seed protocol skips a reference without a number.
    p.skipped = settings.format == EvalFormat::seed && !item.reference_number;
    EvalCounts& n = out.counts;
    ++n.done;
    ++(p.skipped ? n.skipped : n.scored);
    for (size_t f = 0; f < p.filters.size(); ++f)
      n.correct[f] += !p.skipped && p.filters[f].correct;
    if (on_progress) on_progress(n);
  };
  complete_greedy(params, prompts, decode_options(tokenizer, settings), decode, scored);
  return out;
}

Interval wilson_interval(int64_t correct, int64_t n, double z) {
  if (n <= 0) return {};
  const double nn = static_cast<double>(n), p = static_cast<double>(correct) / nn;
  const double z2 = z * z;
  const double center = (p + z2 / (2 * nn)) / (1 + z2 / nn);
  const double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / (1 + z2 / nn);
  // The exact ends at 0 and n correct (float rounding would leave 1e-17 there).
  return {correct == 0 ? 0.0 : center - half, correct == n ? 1.0 : center + half};
}

void write_predictions(const std::string& path, const EvalOutcome& outcome) {
  AtomicFile file(path);
  const auto optional_text = [](const std::optional<std::string>& s) {
    return s ? json::Value(*s) : json::Value();
  };
  for (const Prediction& p : outcome.predictions) {
    json::Value row = json::Value::object();
    row.set("index", p.index);
    row.set("prompt", p.prompt);
    row.set("completion", p.completion);
    json::Value ids = json::Value::array();
    for (const int32_t id : p.tokens) ids.push_back(static_cast<int64_t>(id));
    row.set("completion_ids", std::move(ids));
    row.set("extracted", optional_text(p.filters.at(0).extracted));
    row.set("reference", p.reference);
    row.set("correct", p.skipped ? json::Value() : json::Value(p.filters.at(0).correct));
    row.set("skipped", p.skipped);
    if (p.filters.size() > 1) {
      row.set("flexible_extract", optional_text(p.filters[1].extracted));
      row.set("flexible_correct", p.filters[1].correct);
    }
    file.write(row.dump() + "\n");
  }
  file.commit();
}

}  // namespace zerotune
