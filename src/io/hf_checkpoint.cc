#include "io/hf_checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/files.h"
#include "io/hf_model.h"
#include "io/safetensors.h"

namespace zerotune {

namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxConfigBytes = int64_t{16} << 20;
// Elements converted per write: 2-4 MiB of output keeps syscalls few and memory flat.
constexpr int64_t kConvertChunk = int64_t{1} << 20;

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "float32";
    case DType::bf16:
      return "bfloat16";
    case DType::f16:
      return "float16";
    default:
      fail(str("write_hf_checkpoint: save dtype ", dtype_name(dtype),
               " is not one of f32, bf16, f16"));
  }
}

// The shortest decimal that reads back as `value` once narrowed to float, so that 1e-5f is
// written as 1e-05 and not as its exact double 9.999999747378752e-06.
double shortest_float(float value) {
  char text[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(text, sizeof(text), "%.*g", digits, static_cast<double>(value));
    const double parsed = std::strtod(text, nullptr);
    if (static_cast<float>(parsed) == value) return parsed;
  }
  return static_cast<double>(value);
}

// The source's own spelling when it already means `value`, else the shortest one.
json::Value float_field(const json::Value& source, const char* key, float value) {
  const json::Value* v = source.find(key);
  if (v && v->is_number() && static_cast<float>(v->as_double(key)) == value) return *v;
  return shortest_float(value);
}

// Every field transformers' LlamaConfig (Qwen2Config for Qwen2) writes, in its sorted-key order;
// values not set here are filled by make_hf_config_json from the model's config.
json::Value synthesised_config(const LlamaConfig& c) {
  const bool qwen2 = c.architecture == "Qwen2ForCausalLM";
  const std::vector<const char*> keys =
      qwen2
          ? std::vector<
                const char*>{"architectures",     "attention_dropout",   "bos_token_id",
                             "eos_token_id",      "hidden_act",          "hidden_size",
                             "initializer_range", "intermediate_size",   "max_position_embeddings",
                             "max_window_layers", "model_type",          "num_attention_heads",
                             "num_hidden_layers", "num_key_value_heads", "rms_norm_eps",
                             "rope_scaling",      "rope_theta",          "sliding_window"}
          : std::vector<const char*>{"architectures",
                                     "attention_bias",
                                     "attention_dropout",
                                     "bos_token_id",
                                     "eos_token_id",
                                     "head_dim",
                                     "hidden_act",
                                     "hidden_size",
                                     "initializer_range",
                                     "intermediate_size",
                                     "max_position_embeddings",
                                     "mlp_bias",
                                     "model_type",
                                     "num_attention_heads",
                                     "num_hidden_layers",
                                     "num_key_value_heads",
                                     "pretraining_tp",
                                     "rms_norm_eps",
                                     "rope_scaling",
                                     "rope_theta"};
  json::Value root = json::Value::object();
  for (const char* key : keys) root.set(key, nullptr);
  if (c.architecture == "MistralForCausalLM") root.set("sliding_window", nullptr);
  for (const char* key : {"tie_word_embeddings", "torch_dtype", "use_cache"}) {
    root.set(key, nullptr);
  }
  if (qwen2) {
    root.set("max_window_layers", c.num_hidden_layers);
    root.set("use_sliding_window", c.sliding_window > 0);
  } else {
    root.set("attention_bias", false);
    root.set("mlp_bias", false);
    root.set("pretraining_tp", 1);
  }
  root.set("vocab_size", nullptr);
  root.set("attention_dropout", 0.0);
  root.set("hidden_act", "silu");
  root.set("initializer_range", 0.02);
  root.set("use_cache", true);
  return root;
}

// The model's tensors in the order of transformers' state_dict (module registration order), so
// that shards split where transformers' save_pretrained would split them.
}  // namespace

std::vector<std::string> hf_tensor_order(const LlamaConfig& c) {
  std::vector<std::string> names = {"model.embed_tokens.weight"};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = str("model.layers.", l, ".");
    for (const char* projection : {"q_proj", "k_proj", "v_proj"}) {
      names.push_back(str(p, "self_attn.", projection, ".weight"));
      if (c.qkv_bias) names.push_back(str(p, "self_attn.", projection, ".bias"));
    }
    for (const char* suffix :
         {"self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
          "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"}) {
      names.push_back(p + suffix);
    }
  }
  names.push_back("model.norm.weight");
  if (!c.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

namespace {

// With `fetched`, the tensors carry shapes only (data null): values come from fetch_tensor.
std::vector<NamedTensor> hf_ordered_tensors(const LlamaParams& params, bool fetched) {
  const LlamaConfig& c = params.config();
  const std::vector<std::string> names = hf_tensor_order(c);
  std::vector<NamedTensor> out;
  for (const std::string& name : names) {
    const ParamGroup* group = nullptr;
    const ParamView* view = params.find(name, &group);
    ZT_CHECK(view != nullptr, "write_hf_checkpoint: the parameters have no tensor \"", name, "\" (",
             c.summary(), ")");
    if (fetched) {
      out.push_back({name, Tensor(nullptr, DType::f32, view->shape)});
      continue;
    }
    const Tensor t = group->view(*view);
    ZT_CHECK(t.device.is_cpu() &&
                 (t.dtype == DType::f32 || t.dtype == DType::bf16 || t.dtype == DType::f16),
             "write_hf_checkpoint: tensor \"", name, "\" is ", describe(t), " on ", t.device.name(),
             ", expected a floating tensor on the CPU");
    out.push_back({name, t});
  }
  return out;
}

// Greedy split in order, as transformers' shard_checkpoint: a tensor that would take the current
// shard over the limit starts a new one, so a tensor bigger than the limit sits alone.
std::vector<std::vector<size_t>> plan_shards(const std::vector<NamedTensor>& tensors,
                                             DType save_dtype, int64_t max_shard_bytes) {
  std::vector<std::vector<size_t>> shards(1);
  int64_t current = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t bytes = tensors[i].tensor.numel() * dtype_size(save_dtype);
    if (!shards.back().empty() && current + bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += bytes;
  }
  return shards;
}

// A file being written inside the temporary folder; errors name it.
class OutFile {
 public:
  explicit OutFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail_io("create");
  }
  ~OutFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;

  void write_all(const void* bytes, int64_t size) {
    constexpr int64_t kMaxChunk = int64_t{1} << 30;  // write() moves at most ~2 GiB per call
    const char* data = static_cast<const char*>(bytes);
    while (size > 0) {
      const ssize_t written = ::write(fd_, data, static_cast<size_t>(std::min(size, kMaxChunk)));
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) fail_io("write");
      data += written;
      size -= written;
    }
  }

  // fsync before the folder is renamed into place: a rename must never publish unwritten data.
  void finish() {
    if (::fsync(fd_) != 0) fail_io("fsync");
    if (::close(std::exchange(fd_, -1)) != 0) fail_io("close");
  }

 private:
  [[noreturn]] void fail_io(const char* action) const {
    fail(str(path_, ": cannot ", action, ": ", std::strerror(errno)));
  }

  std::string path_;
  int fd_ = -1;
};

void write_json_file(const std::string& path, const json::Value& value) {
  const std::string text = value.dump(2) + "\n";
  OutFile file(path);
  file.write_all(text.data(), static_cast<int64_t>(text.size()));
  file.finish();
}

// A safetensors file written tensor by tensor: the header first (offsets are known from shapes),
// then each tensor converted to `save_dtype` a chunk at a time, so that no converted copy of the
// model exists in memory. Contiguous data and an 8-byte aligned data section, as safetensors and
// transformers expect; __metadata__ {"format": "pt"} because transformers refuses files without
// it.
void write_safetensors_streamed(const std::string& path, const std::vector<NamedTensor>& tensors,
                                const std::vector<size_t>& indices, DType save_dtype,
                                const HfCheckpointOptions& options) {
  json::Value header = json::Value::object();
  json::Value metadata = json::Value::object();
  metadata.set("format", "pt");
  header.set("__metadata__", std::move(metadata));
  int64_t offset = 0;
  for (size_t i : indices) {
    const Tensor& t = tensors[i].tensor;
    json::Value shape = json::Value::array();
    for (int d = 0; d < t.ndim(); ++d) shape.push_back(t.dim(d));
    json::Value offsets = json::Value::array();
    const int64_t bytes = t.numel() * dtype_size(save_dtype);
    offsets.push_back(offset);
    offsets.push_back(offset + bytes);
    offset += bytes;
    json::Value entry = json::Value::object();
    entry.set("dtype", dtype_safetensors_name(save_dtype));
    entry.set("shape", std::move(shape));
    entry.set("data_offsets", std::move(offsets));
    header.set(tensors[i].name, std::move(entry));
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // trailing spaces are valid JSON

  OutFile file(path);
  unsigned char length[8];
  for (int b = 0; b < 8; ++b) length[b] = static_cast<unsigned char>(text.size() >> (8 * b));
  file.write_all(length, 8);
  file.write_all(text.data(), static_cast<int64_t>(text.size()));
  std::vector<char> chunk;
  Buffer fetched;
  for (size_t i : indices) {
    Tensor t = tensors[i].tensor;
    if (options.fetch_tensor) {
      if (fetched.numel() < t.numel()) fetched = Buffer(DType::f32, Shape{t.numel()});
      options.fetch_tensor(tensors[i].name, fetched.f32());
      t.data = fetched.f32();
    }
    if (t.dtype == save_dtype) {
      file.write_all(t.data, t.nbytes());
      continue;
    }
    chunk.resize(static_cast<size_t>(std::min(t.numel(), kConvertChunk) * dtype_size(save_dtype)));
    const char* src = static_cast<const char*>(t.data);
    for (int64_t start = 0; start < t.numel(); start += kConvertChunk) {
      const int64_t n = std::min(kConvertChunk, t.numel() - start);
      convert(chunk.data(), save_dtype, src + start * dtype_size(t.dtype), t.dtype, n);
      file.write_all(chunk.data(), n * dtype_size(save_dtype));
    }
  }
  file.finish();
}

std::string shard_name(size_t index, size_t count) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

// Removes the temporary folder unless the save was published.
class TempFolder {
 public:
  explicit TempFolder(fs::path path) : path_(std::move(path)) {
    remove_tree_quietly(path_.string());  // a leftover of a crashed save that had our pid
    std::error_code ec;
    fs::create_directory(path_, ec);
    ZT_CHECK(!ec, path_.string(),
             ": cannot create the temporary checkpoint folder: ", ec.message());
  }
  ~TempFolder() {
    if (!published_) remove_tree_quietly(path_.string());
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const fs::path& path() const { return path_; }
  void mark_published() { published_ = true; }

 private:
  fs::path path_;
  bool published_ = false;
};

fs::path checked_target(const std::string& dir) {
  fs::path target = fs::path(dir).lexically_normal();
  if (!target.empty() && target.filename().empty()) target = target.parent_path();  // "a/b/"
  const std::string name = target.filename().string();
  ZT_CHECK(!name.empty() && name != "." && name != "..", "write_hf_checkpoint: \"", dir,
           "\" does not name a folder to write");
  if (fs::exists(target)) {
    ZT_CHECK(fs::is_directory(target), target.string(), ": exists and is not a folder");
    ZT_CHECK(fs::is_empty(target) || fs::exists(target / "config.json"), target.string(),
             ": exists and is neither empty nor a checkpoint (no config.json); refusing to "
             "replace it");
  }
  return target;
}

// The pad id for generation_config.json: the source config's, else the tokenizer's pad token.
int64_t known_pad_id(const json::Value& source, const TokenizerFiles* tokenizer,
                     const std::vector<std::string>& pieces) {
  if (const json::Value* v = source.find("pad_token_id"); v && v->is_int64()) {
    return v->as_int64("pad_token_id");
  }
  if (tokenizer) return tokenizer_token_id(pieces, *tokenizer, tokenizer->pad_token);
  return -1;
}

}  // namespace

namespace {

// A model without BOS (-1) writes null, as transformers' configs do.
json::Value bos_field(const LlamaConfig& c) {
  return c.bos_token_id >= 0 ? json::Value(c.bos_token_id) : json::Value(nullptr);
}

json::Value eos_field(const LlamaConfig& c) {
  if (c.eos_token_ids.size() <= 1) return json::Value(c.eos_token_id);
  json::Value ids = json::Value::array();
  for (const int64_t id : c.eos_token_ids) ids.push_back(id);
  return ids;
}

// The source's rope_scaling object stays as it was when it means what the model uses (it may
// carry fields transformers adds); otherwise the model's own is written.
void set_rope_scaling(json::Value& root, const LlamaConfig& c, const json::Value& source_config) {
  const RopeScaling& r = c.rope_scaling;
  if (source_config.is_object()) {
    try {
      if (parse_rope_scaling(source_config, "config.json") == r) return;
    } catch (const Error&) {  // unreadable in the source: written anew below
    }
  }
  if (r.type == RopeScalingType::none) {
    root.set("rope_scaling", nullptr);
    return;
  }
  json::Value scaling = json::Value::object();
  scaling.set("factor", shortest_float(r.factor));
  if (r.type == RopeScalingType::llama3) {
    scaling.set("high_freq_factor", shortest_float(r.high_freq_factor));
    scaling.set("low_freq_factor", shortest_float(r.low_freq_factor));
    scaling.set("original_max_position_embeddings", r.original_max_position_embeddings);
    scaling.set("rope_type", "llama3");
  } else {
    // "type" alone for linear and dynamic: transformers before 4.43 rejects other field sets.
    scaling.set("type", rope_scaling_name(r.type));
  }
  root.set("rope_scaling", std::move(scaling));
}

}  // namespace

json::Value make_hf_config_json(const LlamaConfig& c, const json::Value& source_config,
                                DType save_dtype) {
  c.validate("write_hf_checkpoint: config");
  ZT_CHECK(source_config.is_null() || source_config.is_object(),
           "write_hf_checkpoint: the source config must be a JSON object or null, got ",
           json::Value::kind_name(source_config.kind()));
  const bool mistral = c.architecture == "MistralForCausalLM";
  const bool qwen2 = c.architecture == "Qwen2ForCausalLM";
  json::Value root = source_config.is_null() ? synthesised_config(c) : source_config;
  json::Value architectures = json::Value::array();
  architectures.push_back(c.architecture);
  root.set("architectures", std::move(architectures));
  root.set("model_type", mistral ? "mistral" : qwen2 ? "qwen2" : "llama");
  root.set("vocab_size", c.vocab_size);
  root.set("hidden_size", c.hidden_size);
  root.set("intermediate_size", c.intermediate_size);
  root.set("num_hidden_layers", c.num_hidden_layers);
  root.set("num_attention_heads", c.num_attention_heads);
  root.set("num_key_value_heads", c.num_key_value_heads);
  root.set("head_dim", c.head_dim);
  root.set("max_position_embeddings", c.max_position_embeddings);
  root.set("rms_norm_eps", float_field(source_config, "rms_norm_eps", c.rms_norm_eps));
  root.set("rope_theta", float_field(source_config, "rope_theta", c.rope_theta));
  root.set("tie_word_embeddings", c.tie_word_embeddings);
  root.set("bos_token_id", bos_field(c));
  root.set("eos_token_id", eos_field(c));
  root.set("torch_dtype", torch_dtype_name(save_dtype));
  // transformers >= 4.56 spells it "dtype"; keep both in step when the source has the new one.
  if (root.find("dtype")) root.set("dtype", torch_dtype_name(save_dtype));
  if (mistral) {
    root.set("sliding_window", c.sliding_window > 0 ? json::Value(c.sliding_window) : nullptr);
  }
  if (qwen2) {
    root.set("use_sliding_window", c.sliding_window > 0);
    if (c.sliding_window > 0) root.set("sliding_window", c.sliding_window);
  }
  set_rope_scaling(root, c, source_config);
  return root;
}

json::Value read_hf_config_json(const std::string& dir) {
  const fs::path path = fs::path(dir) / "config.json";
  ZT_CHECK(fs::is_directory(dir), dir, ": not a directory (expected a Hugging Face model folder)");
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  ZT_CHECK(!ec, path.string(), ": cannot read: ", ec.message());
  ZT_CHECK(static_cast<int64_t>(size) <= kMaxConfigBytes, path.string(), ": ", size,
           " bytes is too large for a config.json");
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path.string(), ": cannot open");
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  ZT_CHECK(in.gcount() == static_cast<std::streamsize>(size), path.string(), ": short read");
  json::Value root = json::parse(text, path.string());
  ZT_CHECK(root.is_object(), path.string(), ": expected a JSON object");
  return root;
}

LoadedHfFolder read_hf_folder(const std::string& dir, HfWeights weights) {
  LoadedHfFolder out;
  out.raw_config = read_hf_config_json(dir);
  out.config = parse_llama_config(out.raw_config, (fs::path(dir) / "config.json").string());
  if (weights == HfWeights::load) {
    out.params = LlamaParams(out.config);
    load_hf_weights(dir, out.params);
  } else {
    out.params = LlamaParams(out.config, Storage::none);
  }
  if (has_tokenizer_files(dir)) out.tokenizer = read_tokenizer_files(dir);
  return out;
}

void write_hf_checkpoint(const std::string& dir, const LlamaParams& params,
                         const json::Value& source_config, const TokenizerFiles* tokenizer,
                         const HfCheckpointOptions& options) {
  // Everything that can be checked is checked before the first byte is written.
  const fs::path target = checked_target(dir);
  const LlamaConfig& c = params.config();
  ZT_CHECK(options.max_shard_bytes > 0,
           "write_hf_checkpoint: max_shard_bytes must be positive, got ", options.max_shard_bytes);
  const json::Value config = make_hf_config_json(c, source_config, options.save_dtype);
  const std::vector<NamedTensor> tensors =
      hf_ordered_tensors(params, static_cast<bool>(options.fetch_tensor));
  std::vector<std::string> pieces;
  if (tokenizer) {
    pieces = tokenizer_vocabulary(*tokenizer, "write_hf_checkpoint: tokenizer");
    int64_t tokenizer_vocab = static_cast<int64_t>(pieces.size());
    for (const auto& [token, id] : tokenizer->added_tokens) {
      tokenizer_vocab = std::max<int64_t>(tokenizer_vocab, int64_t{id} + 1);
    }
    ZT_CHECK(tokenizer_vocab <= c.vocab_size, "write_hf_checkpoint: the tokenizer has ",
             tokenizer_vocab, " tokens (", pieces.size(), " SentencePiece + ",
             tokenizer_vocab - static_cast<int64_t>(pieces.size()),
             " added) but the model's vocab_size is ", c.vocab_size,
             "; resize the embeddings first");
  }
  json::Value generation = json::Value::object();
  generation.set("_from_model_config", true);
  generation.set("bos_token_id", bos_field(c));
  generation.set("eos_token_id", eos_field(c));
  if (const int64_t pad = known_pad_id(source_config, tokenizer, pieces); pad >= 0) {
    generation.set("pad_token_id", pad);
  }

  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    ZT_CHECK(!ec, target.parent_path().string(), ": cannot create the folder: ", ec.message());
  }
  const std::string pid = std::to_string(::getpid());
  TempFolder tmp(target.string() + ".tmp-" + pid);
  const auto written = [&](const fs::path& file) {
    if (options.after_file_written) options.after_file_written(file.string());
  };

  // The tokenizer files first: small, and write_tokenizer_files validates the added token ids, so
  // bad input fails before the weights are written.
  if (tokenizer) {
    write_tokenizer_files(tmp.path().string(), *tokenizer);
    for (const char* name : {"tokenizer.model", "added_tokens.json", "special_tokens_map.json",
                             "tokenizer_config.json", "tokenizer.json"}) {
      if (fs::exists(tmp.path() / name)) written(tmp.path() / name);
    }
  }
  write_json_file((tmp.path() / "config.json").string(), config);
  written(tmp.path() / "config.json");
  write_json_file((tmp.path() / "generation_config.json").string(), generation);
  written(tmp.path() / "generation_config.json");

  const std::vector<std::vector<size_t>> shards =
      plan_shards(tensors, options.save_dtype, options.max_shard_bytes);
  json::Value weight_map = json::Value::object();
  int64_t total_bytes = 0;
  std::vector<std::pair<std::string, std::string>> name_to_file;
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string file =
        shards.size() == 1 ? "model.safetensors" : shard_name(s, shards.size());
    write_safetensors_streamed((tmp.path() / file).string(), tensors, shards[s], options.save_dtype,
                               options);
    written(tmp.path() / file);
    for (size_t i : shards[s]) {
      name_to_file.emplace_back(tensors[i].name, file);
      total_bytes += tensors[i].tensor.numel() * dtype_size(options.save_dtype);
    }
  }
  if (shards.size() > 1) {
    // transformers writes the index with sort_keys=True.
    std::sort(name_to_file.begin(), name_to_file.end());
    for (auto& [name, file] : name_to_file) weight_map.set(name, file);
    json::Value meta = json::Value::object();
    meta.set("total_size", total_bytes);
    json::Value index = json::Value::object();
    index.set("metadata", std::move(meta));
    index.set("weight_map", std::move(weight_map));
    write_json_file((tmp.path() / "model.safetensors.index.json").string(), index);
    written(tmp.path() / "model.safetensors.index.json");
  }
  fsync_directory(tmp.path().string(), true);
  publish_folder(tmp.path().string(), target.string(), target.string() + ".old-" + pid);
  tmp.mark_published();
}

}  // namespace zerotune
