// Chat messages to a prompt with a model folder's Jinja chat template (tokenizer_config.json's
// "chat_template"), rendering exactly what Python's jinja2 renders for it, as transformers'
// apply_chat_template does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace zerotune {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...
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
  // Nothing when the folder has none.
  static std::optional<ChatTemplate> from_folder(const std::string& folder);

  // What jinja2 renders with `messages`, `add_generation_prompt`, `bos_token` and `eos_token`
  // (raise_exception() in the template throws with its message).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

 private:
  struct Program;
  std::unique_ptr<Program> program_;
  std::string bos_token_, eos_token_;
};

}  // namespace zerotune
