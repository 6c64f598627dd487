#include "io/hf_model.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/json.h"
#include "io/safetensors.h"

namespace zerotune {

namespace fs = std::filesystem;

LlamaConfig load_hf_config(const std::string& dir) {
  const fs::path path = fs::path(dir) / "config.json";
  ZT_CHECK(fs::is_directory(dir), dir, ": not a directory (expected a Hugging Face model folder)");
  return load_llama_config(path.string());
}

std::vector<std::string> hf_weight_files(const std::string& dir) {
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index_path)) {
    std::ifstream in(index_path, std::ios::binary);
    ZT_CHECK(in, index_path.string(), ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    const std::string source = index_path.string();
    const json::Value root = json::parse(text.str(), source);
    const json::Value* map = root.find("weight_map");
    ZT_CHECK(map && map->is_object(), source, ": missing the \"weight_map\" object");
    std::set<std::string> files;
    for (const auto& [name, file] : map->members()) {
      const std::string& shard = file.as_string(str(source, ": weight_map[\"", name, "\"]"));
      ZT_CHECK(!shard.empty() && shard.find('/') == std::string::npos && shard != "..", source,
               ": weight_map[\"", name, "\"] names \"", shard,
               "\", expected a file name inside the folder");
      files.insert(shard);
    }
    std::vector<std::string> out;
    for (const std::string& f : files) out.push_back((fs::path(dir) / f).string());
    return out;
  }
  ZT_CHECK(fs::exists(single), dir,
           ": no model.safetensors or model.safetensors.index.json (pickled .bin weights are "
           "not read; convert them to safetensors)");
  return {single.string()};
}

static bool ignorable(const std::string& name, bool tied) {
  if (tied && name == "lm_head.weight") return true;
  const std::string suffix = "rotary_emb.inv_freq";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void load_hf_weights(const std::string& dir, LlamaParams& params, int64_t only_group) {
  std::set<std::string> loaded;
  const bool tied = params.config().tie_word_embeddings;
  for (const std::string& file : hf_weight_files(dir)) {
    const SafetensorsFile st = SafetensorsFile::open(file);
    for (const SafetensorsEntry& e : st.entries()) {
      const ParamGroup* group = nullptr;
      const ParamView* view = params.find(e.name, &group);
      if (!view) {
        ZT_CHECK(ignorable(e.name, tied), file, ": tensor \"", e.name, "\" is not a parameter of ",
                 params.config().summary());
        continue;
      }
      ZT_CHECK(e.shape == view->shape, file, ": tensor \"", e.name, "\" is ", e.shape,
               " but the config expects ", view->shape);
      ZT_CHECK(e.dtype == DType::f32 || e.dtype == DType::bf16 || e.dtype == DType::f16, file,
               ": tensor \"", e.name, "\" is ", dtype_safetensors_name(e.dtype),
               ", expected F32, BF16 or F16");
      ZT_CHECK(loaded.insert(e.name).second, file, ": tensor \"", e.name,
               "\" appears in more than one shard");
      if (only_group >= 0 && group != &params.groups().at(static_cast<size_t>(only_group)))
        continue;
      const Tensor dst = group->view(*view);
      convert(dst.data, dst.dtype, st.tensor(e).data, e.dtype, e.shape.numel());
    }
  }
  for (const ParamGroup& g : params.groups()) {
    for (const ParamView& v : g.views) {
      ZT_CHECK(loaded.count(v.name), dir, ": tensor \"", v.name, "\" (", v.shape,
               ") is missing from the checkpoint");
    }
  }
}

}  // namespace zerotune
