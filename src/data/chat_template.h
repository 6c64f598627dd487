// Chat messages to a prompt with a model folder's Jinja chat template (tokenizer_config.json's
// "chat_template"), rendering exactly what Python's jinja2 renders for it, as transformers'
// apply_chat_template does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace zerotune {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

class ChatTemplate {
 public:
  // Parses `source`; syntax errors throw naming `origin` and the template's line.
  ChatTemplate(std::string source, std::string bos_token, std::string eos_token,
               std::string origin);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // The template of `folder`/tokenizer_config.json: "chat_template" as a string, or a list of
  // {"name", "template"} entries whose "default" one is used; bos/eos from the same file.
  // Nothing when the folder has none. A chat_template.jinja file in the folder takes precedence,
  // as transformers gives it; the file's special tokens (bos, eos, unk, pad, ... as strings or
  // {"content": ...} objects) are all template variables, a missing one is undefined.
  static std::optional<ChatTemplate> from_folder(const std::string& folder);

  // What jinja2 renders with `messages`, `add_generation_prompt`, `bos_token` and `eos_token`
  // (raise_exception() in the template throws with its message).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  // The same for messages as OpenAI requests carry them (a JSON array of objects that may hold
  // tool_calls, name, a content list, ...), with `variables` (a JSON object, or null) passed to
  // the template too: tools, documents, date_string, enable_thinking, ... . Like transformers,
  // every render sees tools and documents (none unless given) and the folder's special tokens.
  // raise_exception(msg) throws jinja::RaisedError whose what() is msg alone; other template
  // errors throw jinja::TemplateError naming the origin and line.
  std::string render(const json::Value& messages, bool add_generation_prompt,
                     const json::Value& variables) const;

  const std::string& origin() const;

 private:
  struct Program;
  std::unique_ptr<Program> program_;
  std::string bos_token_, eos_token_;
};

}  // namespace zerotune
