#include "report/run_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/check.h"
#include "core/json.h"

namespace zerotune::report {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The same bound as every JSONL reader of zerotune: a metrics row is a few hundred bytes.
constexpr size_t kMaxLineBytes = size_t{16} << 20;

// A number field, or NaN when the row lacks it or holds null (an infinite perplexity).
double number_or_nan(const json::Value& row, const char* key, const std::string& where) {
  const json::Value* v = row.find(key);
  if (!v || v->is_null()) return kNaN;
  return v->as_double(where + ": \"" + key + "\"");
}

int64_t required_int(const json::Value& row, const char* key, const std::string& where,
                     const char* kind) {
  const json::Value* v = row.find(key);
  ZT_CHECK(v && v->is_number(), where, ": ", kind, " row needs a number \"", key, "\"");
  return v->as_int64(where + ": \"" + key + "\"");
}

StepPoint step_point(const json::Value& row, const std::string& where) {
  StepPoint p;
  p.step = required_int(row, "step", where, "a train");
  const json::Value* epoch = row.find("epoch");
  p.epoch = epoch && epoch->is_number() ? epoch->as_int64(where + ": \"epoch\"") : -1;
  p.loss = number_or_nan(row, "loss", where);
  p.lr = number_or_nan(row, "lr", where);
  p.grad_norm = number_or_nan(row, "grad_norm", where);
  p.tokens_per_s = number_or_nan(row, "tokens_per_s", where);
  p.step_time_s = number_or_nan(row, "step_time_s", where);
  return p;
}

EpochPoint epoch_point(const json::Value& row, const std::string& where) {
  EpochPoint p;
  p.epoch = required_int(row, "epoch", where, "an eval");
  p.eval_loss = number_or_nan(row, "eval_loss", where);
  p.perplexity = number_or_nan(row, "perplexity", where);
  p.accuracy = number_or_nan(row, "accuracy", where);
  const json::Value* examples = row.find("accuracy_examples");
  if (examples && examples->is_number()) {
    p.accuracy_examples = examples->as_int64(where + ": \"accuracy_examples\"");
  }
  p.train_time_s = number_or_nan(row, "train_time_s", where);
  p.eval_time_s = number_or_nan(row, "eval_time_s", where);
  return p;
}

// A row's type: its "type", else what its fields say (rows written before "type" existed).
std::string row_type(const json::Value& row) {
  const json::Value* type = row.find("type");
  if (type && type->is_string()) return type->as_string("type");
  if (row.find("step")) return "train";
  if (row.find("eval_loss") || row.find("perplexity")) return "eval";
  return "";
}

void add_row(const json::Value& row, const std::string& where, RunData& run) {
  ZT_CHECK(row.is_object(), where, ": expected a JSON object, got ",
           json::Value::kind_name(row.kind()));
  const std::string type = row_type(row);
  if (type == "train") {
    run.steps.push_back(step_point(row, where));
  } else if (type == "eval") {
    run.epochs.push_back(epoch_point(row, where));
  } else {
    ++run.unknown_rows;
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string format_number(const json::Value& v) {
  if (v.is_string()) return v.as_string("");
  if (v.is_int64()) return std::to_string(v.as_int64(""));
  return v.dump();
}

}  // namespace

void read_metrics(const std::string& path, RunData& run) {
  const std::string text = read_text(path);
  size_t begin = 0;
  int64_t line_no = 0;
  while (begin < text.size()) {
    ++line_no;
    const size_t newline = text.find('\n', begin);
    const bool last_unterminated = newline == std::string::npos;
    const size_t end = last_unterminated ? text.size() : newline;
    const std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    const std::string where = str(path, ":", line_no);
    ZT_CHECK(line.size() <= kMaxLineBytes, where, ": a row of ", line.size(),
             " bytes, more than a metrics row can be");
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (last_unterminated) {
      // The writer appends a row and its newline together: a last line without one that does not
      // parse is a row still being written.
      try {
        add_row(json::parse_line(line, path, line_no), where, run);
      } catch (const Error&) {
        run.partial_last_row = true;
      }
      continue;
    }
    add_row(json::parse_line(line, path, line_no), where, run);
  }
  // A resumed run may have replayed steps; trim_metrics drops them, but keep the order safe.
  std::stable_sort(run.steps.begin(), run.steps.end(),
                   [](const StepPoint& a, const StepPoint& b) { return a.step < b.step; });
}

NamedValues summarize_model_config(const std::string& config_path) {
  const json::Value config = json::parse(read_text(config_path), config_path);
  ZT_CHECK(config.is_object(), config_path, ": expected a JSON object");
  NamedValues out;
  for (const char* key :
       {"model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "intermediate_size", "vocab_size", "max_position_embeddings",
        "rope_theta", "rms_norm_eps", "tie_word_embeddings", "torch_dtype"}) {
    if (const json::Value* v = config.find(key)) out.emplace_back(key, format_number(*v));
  }
  auto integer = [&](const char* key, int64_t fallback) {
    const json::Value* v = config.find(key);
    return v && v->is_int64() ? v->as_int64(str(config_path, ": ", key)) : fallback;
  };
  const int64_t d = integer("hidden_size", 0), layers = integer("num_hidden_layers", 0);
  const int64_t heads = integer("num_attention_heads", 0), vocab = integer("vocab_size", 0);
  const int64_t kv_heads = integer("num_key_value_heads", heads),
                ffn = integer("intermediate_size", 0);
  if (d > 0 && heads > 0 && layers > 0 && vocab > 0) {
    const int64_t head_dim = integer("head_dim", d / heads);
    const json::Value* tied = config.find("tie_word_embeddings");
    const bool untied_head = !(tied && tied->is_bool() && tied->as_bool("tie_word_embeddings"));
    // Per layer: q, k, v, o projections, gate/up/down, two RMSNorm weights; then the embedding,
    // the final norm and (untied) the head.
    const int64_t per_layer =
        d * (heads + 2 * kv_heads) * head_dim + heads * head_dim * d + 3 * d * ffn + 2 * d;
    const int64_t params = vocab * d * (untied_head ? 2 : 1) + layers * per_layer + d;
    out.emplace_back("parameters", std::to_string(params));
  }
  return out;
}

namespace {

// settings.json (written with every report by the trainer): {"--option": "value", ...}.
void read_settings(const std::string& path, RunData& run) {
  const json::Value settings = json::parse(read_text(path), path);
  for (const auto& [key, value] : settings.as_object(path)) {
    run.settings.emplace_back(key, format_number(value));
  }
  run.settings_source = "settings.json";
}

// train_state/state.json: the progress, and the settings that change the run's numbers (its
// fingerprint, "key=value ..."), for runs written without settings.json.
void read_state(const std::string& path, RunData& run) {
  const json::Value state = json::parse(read_text(path), path);
  ZT_CHECK(state.is_object(), path, ": expected a JSON object");
  auto integer = [&](const char* key) {
    const json::Value* v = state.find(key);
    return v && v->is_int64() ? v->as_int64(key) : int64_t{-1};
  };
  run.total_steps = integer("total_steps");
  run.global_step = integer("global_step");
  run.epochs_done = integer("epochs_done");
  if (!run.settings.empty()) return;
  const json::Value* fingerprint = state.find("fingerprint");
  if (fingerprint && fingerprint->is_string()) {
    std::istringstream words(fingerprint->as_string("fingerprint"));
    for (std::string word; words >> word;) {
      const size_t eq = word.find('=');
      if (eq != std::string::npos)
        run.settings.emplace_back(word.substr(0, eq), word.substr(eq + 1));
    }
  }
  for (const char* key : {"seed", "world_size"}) {
    if (integer(key) >= 0) run.settings.emplace_back(key, std::to_string(integer(key)));
  }
  run.settings_source = "train_state/state.json";
}

void read_memory(const std::string& path, RunData& run) {
  const json::Value memory = json::parse(read_text(path), path);
  for (const auto& [key, value] : memory.as_object(path)) {
    if (key == "device" && value.is_string()) run.memory.device = value.as_string(key);
    if (key == "zero_stage" && value.is_int64()) run.memory.zero_stage = value.as_int64(key);
    if (!value.is_array()) continue;
    std::vector<int64_t> per_rank;
    for (const json::Value& v : value.items()) per_rank.push_back(v.as_int64(path + ": " + key));
    run.memory.rows.emplace_back(key, std::move(per_rank));
  }
}

// The newest epoch-<k>/config.json: the model as trained (with any added tokens).
std::string newest_config(const std::string& dir) {
  int64_t best = -1;
  std::string found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("epoch-", 0) != 0 || !fs::exists(entry.path() / "config.json")) continue;
    const std::string digits = name.substr(6);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const int64_t k = std::stoll(digits);
    if (k > best) best = k, found = (entry.path() / "config.json").string();
  }
  return found;
}

// The folder's own name, also for "." or "runs/a/": what a legend shows.
std::string folder_name(const std::string& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string name = p.filename().string();
  return name.empty() ? dir : name;
}

// Reads one optional file with `reader`; a missing file becomes `missing_note`.
template <class Reader>
void read_optional(const fs::path& path, const char* missing_note, RunData& run, Reader reader) {
  if (fs::exists(path)) {
    reader(path.string(), run);
  } else if (missing_note) {
    run.notes.push_back(missing_note);
  }
}

}  // namespace

RunData read_run(const std::string& dir) {
  ZT_CHECK(fs::is_directory(dir), dir, ": not a run folder (no such directory)");
  RunData run;
  run.dir = dir.size() > 1 && dir.back() == '/' ? dir.substr(0, dir.size() - 1) : dir;
  run.name = folder_name(dir);
  const fs::path root(dir);
  ZT_CHECK(fs::exists(root / "metrics.jsonl"), (root / "metrics.jsonl").string(),
           ": missing; is this the --output_dir of a zerotune train run?");
  read_metrics((root / "metrics.jsonl").string(), run);
  read_optional(root / "settings.json", nullptr, run, read_settings);
  read_optional(root / "train_state" / "state.json", "no training state yet (first epoch running)",
                run, read_state);
  if (run.settings.empty()) run.notes.push_back("no settings recorded");
  read_optional(root / "memory.json", "memory.json is written when the run ends", run, read_memory);
  const std::string config = newest_config(dir);
  if (config.empty()) {
    run.notes.push_back("no epoch checkpoint yet: model config unknown");
  } else {
    run.model = summarize_model_config(config);
    run.model_source = fs::relative(config, root).string();
  }
  if (run.partial_last_row) run.notes.push_back("metrics.jsonl ends in a row still being written");
  return run;
}

}  // namespace zerotune::report
