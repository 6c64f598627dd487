#include "eval/eval_items.h"

#include <algorithm>
#include <string_view>

#include "core/check.h"
#include "core/json.h"
#include "core/rng.h"
#include "data/gsm8k.h"
#include "data/text_jsonl.h"
#include "eval/gsm8k_score.h"

namespace zerotune {
namespace {

constexpr std::string_view kStartA = "<START_A>";
constexpr std::string_view kEndA = "<END_A>";

const std::string& string_field(const json::Value& row, const char* field,
                                const JsonlReader& reader) {
  const json::Value* value = row.find(field);
  ZT_CHECK(value != nullptr, reader.where(), ": the row has no \"", field, "\" field");
  ZT_CHECK(value->is_string(), reader.where(), ": \"", field, "\" must be a string, got ",
           json::Value::kind_name(value->kind()));
  return value->as_string(field);
}

// Every row of a JSONL file (at most `limit` when limit >= 0) through `take`, which gets the row
// and the reader (for its position); a file without rows is an error naming `expected`.
template <class Take>
void read_rows(const std::string& path, int64_t limit, const char* expected, Take take) {
  JsonlReader reader(path);
  json::Value row;
  int64_t rows = 0;
  while ((limit < 0 || rows < limit) && reader.next(row)) {
    take(row, reader, rows);
    ++rows;
  }
  ZT_CHECK(rows > 0, path, ": no rows; expected ", expected, " per line");
}

EvalItem seed_item(const std::string& text, const JsonlReader& reader, int64_t index) {
  const size_t start = text.find(kStartA);
  ZT_CHECK(start != std::string::npos, reader.where(), ": the row has no ", kStartA,
           "; expected \"<START_Q>question<END_Q><START_A>answer<END_A>\"");
  EvalItem item;
  item.index = index;
  item.where = reader.where();
  item.prompt = text.substr(0, start + kStartA.size());
  std::string answer = text.substr(start + kStartA.size());
  if (const size_t end = answer.find(kEndA); end != std::string::npos) answer.resize(end);
  ZT_CHECK(has_answer_marker(answer), reader.where(),
           ": the answer has no \"####\"; expected GSM8K's \"... #### <number>\" after ", kStartA);
  item.reference_number = final_answer(answer);
  item.reference = std::move(answer);
  return item;
}

// `count` distinct indexes below `n`, drawn by a generator of its own for this test row.
std::vector<int64_t> fewshot_indexes(int64_t n, int64_t count, uint64_t seed, int64_t row) {
  Rng rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(row));
  std::vector<int64_t> picked;
  while (static_cast<int64_t>(picked.size()) < count) {
    const int64_t i = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
    if (std::find(picked.begin(), picked.end(), i) == picked.end()) picked.push_back(i);
  }
  return picked;
}

}  // namespace

std::vector<EvalItem> read_seed_items(const std::string& path, int64_t limit) {
  std::vector<EvalItem> items;
  read_rows(path, limit, "{\"input\": \"<START_Q>question<END_Q><START_A>answer<END_A>\"}",
            [&](const json::Value& row, const JsonlReader& reader, int64_t index) {
              items.push_back(seed_item(string_field(row, "input", reader), reader, index));
            });
  return items;
}

std::string lm_eval_question(const std::string& question) {
  return "Question: " + question + "\nAnswer:";
}

const std::vector<std::string>& lm_eval_stop_strings() {
  static const std::vector<std::string> until = {"Question:", "</s>", "<|im_end|>"};
  return until;
}

std::vector<EvalItem> read_lm_eval_items(const std::string& path, int64_t limit,
                                         const FewShot& fewshot) {
  std::vector<QaPair> shots;
  if (fewshot.count > 0) {
    ZT_CHECK(!fewshot.path.empty(), "--num-fewshot ", fewshot.count,
             " needs --fewshot-data (GSM8K's train split as question/answer JSONL)");
    shots = read_gsm8k_jsonl(fewshot.path);
    ZT_CHECK(static_cast<int64_t>(shots.size()) >= fewshot.count, fewshot.path, " has ",
             shots.size(), " rows, fewer than --num-fewshot ", fewshot.count);
  }
  std::vector<EvalItem> items;
  read_rows(path, limit, "GSM8K's {\"question\": \"...\", \"answer\": \"...\"}",
            [&](const json::Value& row, const JsonlReader& reader, int64_t index) {
              EvalItem item;
              item.index = index;
              item.where = reader.where();
              item.reference = string_field(row, "answer", reader);
              ZT_CHECK(has_answer_marker(item.reference), reader.where(),
                       ": \"answer\" has no \"####\"; expected GSM8K's \"... #### <number>\"");
              item.reference_number = final_answer(item.reference);
              // The harness: the solved examples joined by its fewshot_delimiter "\n\n", each
              // question and answer by its target_delimiter " ".
              for (const int64_t s : fewshot_indexes(static_cast<int64_t>(shots.size()),
                                                     fewshot.count, fewshot.seed, index)) {
                const QaPair& shot = shots[static_cast<size_t>(s)];
                item.prompt += lm_eval_question(shot.question) + " " + shot.answer + "\n\n";
              }
              item.prompt += lm_eval_question(string_field(row, "question", reader));
              items.push_back(std::move(item));
            });
  return items;
}

}  // namespace zerotune
