#include "data/gsm8k.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "core/check.h"
#include "core/json.h"
#include "data/text_jsonl.h"

namespace zerotune {

namespace fs = std::filesystem;

const std::vector<std::string>& qa_special_tokens() {
  static const std::vector<std::string> tokens = {"<START_Q>", "<END_Q>", "<START_A>", "<END_A>"};
  return tokens;
}

std::string format_qa(std::string_view question, std::string_view answer) {
  std::string out = "<START_Q>";
  out += question;
  out += "<END_Q><START_A>";
  out += answer;
  out += "<END_A>";
  return out;
}

std::string qa_tokens_json() {
  std::string out = "{\"tokens\": [";
  for (size_t i = 0; i < qa_special_tokens().size(); ++i) {
    if (i) out += ", ";
    out += json::quote(qa_special_tokens()[i]);
  }
  out += "]}\n";
  return out;
}

void write_qa_dataset(const std::string& out_dir, const std::vector<std::string>& train_inputs,
                      const std::vector<std::string>& test_inputs) {
  // Readers refuse an empty split, so writing one would only move the error to training time.
  ZT_CHECK(!train_inputs.empty() && !test_inputs.empty(), out_dir, ": refusing to write ",
           train_inputs.size(), " train and ", test_inputs.size(),
           " test rows; both splits need at least one row");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  ZT_CHECK(!ec && fs::is_directory(out_dir), out_dir, ": cannot create the output folder",
           ec ? ": " + ec.message() : std::string());
  const fs::path dir(out_dir);
  TextJsonlWriter train((dir / "train.jsonl").string());
  TextJsonlWriter test((dir / "test.jsonl").string());
  AtomicFile tokens((dir / "tokens.json").string());
  for (const std::string& text : train_inputs) train.write(text);
  for (const std::string& text : test_inputs) test.write(text);
  tokens.write(qa_tokens_json());
  train.finish();
  test.finish();
  tokens.finish();
  train.commit();
  test.commit();
  tokens.commit();
}

std::string chat_qa_line(std::string_view question, std::string_view answer) {
  return str("{\"messages\": [{\"role\": \"user\", \"content\": ", json::quote(question),
             "}, {\"role\": \"assistant\", \"content\": ", json::quote(answer), "}]}\n");
}

void write_qa_pairs(const std::string& out_dir, const std::vector<QaPair>& train,
                    const std::vector<QaPair>& test, QaFormat format) {
  if (format == QaFormat::markers) {
    std::vector<std::string> inputs[2];
    for (const QaPair& p : train) inputs[0].push_back(format_qa(p.question, p.answer));
    for (const QaPair& p : test) inputs[1].push_back(format_qa(p.question, p.answer));
    write_qa_dataset(out_dir, inputs[0], inputs[1]);
    return;
  }
  ZT_CHECK(!train.empty() && !test.empty(), out_dir, ": refusing to write ", train.size(),
           " train and ", test.size(), " test rows; both splits need at least one row");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  ZT_CHECK(!ec && fs::is_directory(out_dir), out_dir, ": cannot create the output folder",
           ec ? ": " + ec.message() : std::string());
  AtomicFile train_file((fs::path(out_dir) / "train.jsonl").string());
  AtomicFile test_file((fs::path(out_dir) / "test.jsonl").string());
  for (const QaPair& p : train) train_file.write(chat_qa_line(p.question, p.answer));
  for (const QaPair& p : test) test_file.write(chat_qa_line(p.question, p.answer));
  train_file.finish();
  test_file.finish();
  train_file.commit();
  test_file.commit();
}

namespace {

bool has_parquet_name(const fs::path& path) {
  return path.extension() == ".parquet";
}

// Parquet files begin (and end) with the magic bytes "PAR1".
bool has_parquet_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[4] = {};
  const bool parquet = std::fread(magic, 1, 4, f) == 4 && std::string_view(magic, 4) == "PAR1";
  std::fclose(f);
  return parquet;
}

[[noreturn]] void fail_parquet(const std::string& path, std::string_view split) {
  fail(str(path,
           ": is a Parquet file, which zerotune cannot read (Debian 12 has no Apache "
           "Arrow/Parquet C++ library). Convert it to JSON Lines elsewhere, e.g. with pandas: "
           "pandas.read_parquet('",
           path, "').to_json('", split,
           ".jsonl', orient='records', lines=True), or with datasets: "
           "load_dataset('gsm8k', 'main')['",
           split, "'].to_json('", split, ".jsonl'); then pass the folder holding train.jsonl and ",
           "test.jsonl"));
}

// The split's file in `input`: `split`.jsonl, or an error naming a Parquet file found instead
// (the Hugging Face hub publishes GSM8K as main/train-00000-of-00001.parquet).
std::string find_split(const fs::path& input, const std::string& split) {
  std::error_code ec;
  if (fs::is_regular_file(input, ec)) {
    if (has_parquet_name(input)) fail_parquet(input.string(), split);
    fail(str(input.string(), ": --input must be a folder holding GSM8K's train.jsonl and ",
             "test.jsonl"));
  }
  ZT_CHECK(fs::is_directory(input, ec), input.string(),
           ": no such folder; expected GSM8K as published, a folder holding train.jsonl and "
           "test.jsonl");
  const fs::path jsonl = input / (split + ".jsonl");
  if (fs::exists(jsonl, ec)) return jsonl.string();
  std::vector<std::string> parquet;
  for (const fs::path& dir : {input, input / "main", input / "data"}) {
    if (!fs::is_directory(dir, ec)) continue;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(split, 0) == 0 && has_parquet_name(entry.path())) {
        parquet.push_back(entry.path().string());
      }
    }
  }
  if (!parquet.empty()) fail_parquet(*std::min_element(parquet.begin(), parquet.end()), split);
  fail(str(jsonl.string(), ": not found; expected GSM8K as published: train.jsonl and test.jsonl ",
           "with \"question\" and \"answer\" fields"));
}

std::string split_of(const std::string& path) {
  const std::string stem = fs::path(path).stem().string();
  return stem.rfind("test", 0) == 0 ? "test" : "train";
}

const std::string& required_text(const json::Value& row, const char* key,
                                 const JsonlReader& reader) {
  const json::Value* value = row.find(key);
  ZT_CHECK(value, reader.where(), ": missing \"", key,
           "\"; expected GSM8K's {\"question\": \"...\", \"answer\": \"...\"}");
  const std::string& text = value->as_string(str(reader.where(), ": \"", key, "\""));
  ZT_CHECK(!text.empty(), reader.where(), ": \"", key, "\" is empty");
  return text;
}

}  // namespace

std::vector<QaPair> read_gsm8k_jsonl(const std::string& path) {
  if (has_parquet_name(path) || has_parquet_magic(path)) fail_parquet(path, split_of(path));
  JsonlReader reader(path);
  std::vector<QaPair> pairs;
  json::Value row;
  while (reader.next(row)) {
    QaPair pair;
    pair.question = required_text(row, "question", reader);
    pair.answer = required_text(row, "answer", reader);
    pairs.push_back(std::move(pair));
  }
  ZT_CHECK(!pairs.empty(), path,
           ": no rows; expected GSM8K's {\"question\": \"...\", \"answer\": \"...\"} per line");
  return pairs;
}

Gsm8kCounts convert_gsm8k(const std::string& input_dir, const std::string& out_dir,
                          QaFormat format) {
  const fs::path input(input_dir);
  std::error_code ec_in, ec_out;
  const fs::path input_abs = fs::weakly_canonical(input, ec_in);
  const fs::path out_abs = fs::weakly_canonical(out_dir, ec_out);
  // Converting in place would replace the published files with converted ones.
  ZT_CHECK(ec_in || ec_out || input_abs != out_abs, out_dir,
           ": --out must be a different folder from --input");
  const std::vector<QaPair> train = read_gsm8k_jsonl(find_split(input, "train"));
  const std::vector<QaPair> test = read_gsm8k_jsonl(find_split(input, "test"));
  write_qa_pairs(out_dir, train, test, format);
  return {static_cast<int64_t>(train.size()), static_cast<int64_t>(test.size())};
}

}  // namespace zerotune
