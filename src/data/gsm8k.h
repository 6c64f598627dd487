// The fine-tuning dataset format of the job zerotune replaces, and the converter from GSM8K as
// published. A dataset folder holds train.jsonl and test.jsonl, one
// {"input": "<START_Q>{question}<END_Q><START_A>{answer}<END_A>"} per line, and tokens.json,
// {"tokens": ["<START_Q>", "<END_Q>", "<START_A>", "<END_A>"]}: the special tokens that the
// tokenizer adds to its vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zerotune {

// The four markers, in the order tokens.json lists them.
const std::vector<std::string>& qa_special_tokens();

// "<START_Q>" + question + "<END_Q><START_A>" + answer + "<END_A>"
std::string format_qa(std::string_view question, std::string_view answer);

// The bytes of tokens.json.
std::string qa_tokens_json();

// Writes train.jsonl, test.jsonl and tokens.json into `out_dir` (created when missing). All three
// are written completely under temporary names before any is renamed into place, so a failure
// leaves whatever the folder held before.
void write_qa_dataset(const std::string& out_dir, const std::vector<std::string>& train_inputs,
                      const std::vector<std::string>& test_inputs);

struct QaPair {
  std::string question, answer;
};

// Reads a GSM8K split as published in JSON Lines: objects with string fields "question" and
// "answer". Errors name file:line; a Parquet file is refused with a message saying how to convert.
std::vector<QaPair> read_gsm8k_jsonl(const std::string& path);

struct Gsm8kCounts {
  int64_t train = 0, test = 0;
};

// markers: the job's {"input": "<START_Q>...<END_A>"} rows and tokens.json. chat: one
// conversation per row for instruct models, {"messages": [{"role": "user", "content": question},
// {"role": "assistant", "content": answer}]}, rendered at training time with the model's chat
// template; no tokens.json (the template's own special tokens mark the turns).
enum class QaFormat : uint8_t { markers, chat };

// The JSONL line (newline included) of one pair in the chat format.
std::string chat_qa_line(std::string_view question, std::string_view answer);

// Writes both splits in `format` into `out_dir` as write_qa_dataset does (all files complete
// before any is renamed into place).
void write_qa_pairs(const std::string& out_dir, const std::vector<QaPair>& train,
                    const std::vector<QaPair>& test, QaFormat format);

// Converts `input_dir`/{train,test}.jsonl into the fine-tuning format in `out_dir`. Both splits
// are read and checked before anything is written.
Gsm8kCounts convert_gsm8k(const std::string& input_dir, const std::string& out_dir,
                          QaFormat format = QaFormat::markers);

}  // namespace zerotune
