#include "data/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/check.h"
#include "data/jinja.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

// tokenizer_config.json holds tokenizer settings and templates: a few MB at most.
constexpr int64_t kMaxConfigBytes = 64 << 20;

// The special tokens transformers passes to every chat template (its special_tokens_map).
const char* const kSpecialTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                         "pad_token", "cls_token", "mask_token"};

std::string read_file(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  ZT_CHECK(!ec, path.string(), ": cannot read: ", ec.message());
  ZT_CHECK(static_cast<int64_t>(size) <= kMaxConfigBytes, path.string(), ": ", size,
           " bytes is more than a tokenizer config can be (limit ", kMaxConfigBytes, ")");
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in.good(), path.string(), ": cannot open");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// A special token as tokenizer_config.json writes it: "<s>", or {"content": "<s>", ...}.
std::optional<std::string> token_text(const json::Value& config, const char* key,
                                      const std::string& source) {
  const json::Value* v = config.find(key);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_string()) return v->as_string("");
  ZT_CHECK(v->is_object(), source, ": \"", key,
           "\" must be a string or an object with \"content\", got ",
           json::Value::kind_name(v->kind()));
  const json::Value* content = v->find("content");
  ZT_CHECK(content && content->is_string(), source, ": \"", key, "\" has no string \"content\"");
  return content->as_string("");
}

// "chat_template": a string, or [{"name": ..., "template": ...}, ...] with a "default" entry.
std::optional<std::string> template_text(const json::Value& config, const std::string& source) {
  const json::Value* t = config.find("chat_template");
  if (!t || t->is_null()) return std::nullopt;
  if (t->is_string()) return t->as_string("");
  ZT_CHECK(t->is_array(), source,
           ": \"chat_template\" must be a string or a list of {\"name\", \"template\"}, got ",
           json::Value::kind_name(t->kind()));
  for (const json::Value& entry : t->items()) {
    ZT_CHECK(entry.is_object(), source, ": \"chat_template\" entries must be objects");
    const json::Value* name = entry.find("name");
    const json::Value* text = entry.find("template");
    ZT_CHECK(name && name->is_string() && text && text->is_string(), source,
             ": each \"chat_template\" entry needs string \"name\" and \"template\"");
    if (name->as_string("") == "default") return text->as_string("");
  }
  fail(source + ": \"chat_template\" lists named templates but none named \"default\"");
}

jinja::Value messages_value(const std::vector<ChatMessage>& messages) {
  jinja::ValueList list;
  for (const ChatMessage& m : messages) {
    jinja::Dict d;
    d.set(jinja::Value("role"), jinja::Value(m.role));
    d.set(jinja::Value("content"), jinja::Value(m.content));
    list.push_back(jinja::Value::dict(std::move(d)));
  }
  return jinja::Value::sequence(std::move(list));
}

}  // namespace

struct ChatTemplate::Program {
  jinja::Template compiled;
  jinja::Variables special_tokens;  // bos_token, eos_token, ... as the template sees them
};

ChatTemplate::ChatTemplate(std::string source, std::string bos_token, std::string eos_token,
                           std::string origin)
    : program_(std::make_unique<Program>(
          Program{jinja::Template::parse(source, std::move(origin)), {}})),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)) {
  program_->special_tokens = {{"bos_token", jinja::Value(bos_token_)},
                              {"eos_token", jinja::Value(eos_token_)}};
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::optional<ChatTemplate> ChatTemplate::from_folder(const std::string& folder) {
  const fs::path config_path = fs::path(folder) / "tokenizer_config.json";
  const fs::path jinja_path = fs::path(folder) / "chat_template.jinja";
  json::Value config = json::Value::object();
  if (fs::exists(config_path)) config = json::parse(read_file(config_path), config_path.string());
  ZT_CHECK(config.is_object(), config_path.string(), ": expected a JSON object");

  std::optional<std::string> source;
  std::string origin;
  if (fs::exists(jinja_path)) {
    source = read_file(jinja_path);
    origin = jinja_path.string();
  } else {
    source = template_text(config, config_path.string());
    origin = config_path.string() + " chat_template";
  }
  if (!source) return std::nullopt;

  std::optional<std::string> tokens[std::size(kSpecialTokenKeys)];
  for (size_t i = 0; i < std::size(kSpecialTokenKeys); ++i) {
    tokens[i] = token_text(config, kSpecialTokenKeys[i], config_path.string());
  }
  ChatTemplate chat(std::move(*source), tokens[0].value_or(""), tokens[1].value_or(""),
                    std::move(origin));
  // As transformers: only the tokens the file sets are defined for the template.
  chat.program_->special_tokens.clear();
  for (size_t i = 0; i < std::size(kSpecialTokenKeys); ++i) {
    if (tokens[i])
      chat.program_->special_tokens.emplace_back(kSpecialTokenKeys[i], jinja::Value(*tokens[i]));
  }
  if (const json::Value* extra = config.find("additional_special_tokens");
      extra && extra->is_array()) {
    jinja::ValueList list;
    for (const json::Value& t : extra->items()) {
      if (t.is_string()) list.push_back(jinja::Value(t.as_string("")));
      if (t.is_object() && t.find("content") && t.find("content")->is_string()) {
        list.push_back(jinja::Value(t.find("content")->as_string("")));
      }
    }
    chat.program_->special_tokens.emplace_back("additional_special_tokens",
                                               jinja::Value::sequence(std::move(list)));
  }
  return chat;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt) const {
  jinja::Variables variables = {{"messages", messages_value(messages)},
                                {"tools", jinja::Value::none()},
                                {"documents", jinja::Value::none()},
                                {"add_generation_prompt", jinja::Value(add_generation_prompt)}};
  variables.insert(variables.end(), program_->special_tokens.begin(),
                   program_->special_tokens.end());
  return program_->compiled.render(variables);
}

std::string ChatTemplate::render(const json::Value& messages, bool add_generation_prompt,
                                 const json::Value& variables) const {
  ZT_CHECK(messages.is_array(), origin(), ": messages must be a JSON array, got ",
           json::Value::kind_name(messages.kind()));
  ZT_CHECK(variables.is_null() || variables.is_object(), origin(),
           ": template variables must be a JSON object, got ",
           json::Value::kind_name(variables.kind()));
  jinja::Variables all = {{"messages", jinja::Value::from_json(messages)},
                          {"tools", jinja::Value::none()},
                          {"documents", jinja::Value::none()},
                          {"add_generation_prompt", jinja::Value(add_generation_prompt)}};
  all.insert(all.end(), program_->special_tokens.begin(), program_->special_tokens.end());
  if (variables.is_object()) {
    for (const auto& [name, value] : variables.members()) {
      all.emplace_back(name, jinja::Value::from_json(value));
    }
  }
  return program_->compiled.render(all);
}

const std::string& ChatTemplate::origin() const {
  return program_->compiled.origin();
}

}  // namespace zerotune
