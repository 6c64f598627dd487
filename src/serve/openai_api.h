// The JSON of OpenAI's completions and chat completions API (as vLLM serves it): requests parsed
// and checked field by field, replies, stream chunks and errors. No HTTP here (http_server.h).
//
// Request fields: model, prompt (a string, a list of strings, a list of token ids or a list of
// such lists: one choice per prompt, as vLLM answers a list) or messages, max_tokens
// (max_completion_tokens for chat), temperature (0 = greedy), top_p, top_k, seed, stop (a string
// or a list), n (1 only), stream, stream_options.include_usage; for chat also tools, documents,
// chat_template_kwargs and add_generation_prompt, which go to the chat template. Other fields are
// ignored, except those asking for what is not implemented (echo, logprobs, best_of > 1), which
// are refused rather than silently answered without.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "model/sampling.h"
#include "serve/scheduler.h"

namespace zerotune::serve {

// An error reply: HTTP status and OpenAI's {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = {}, std::string code = {});
  int status() const { return status_; }
  const std::string& param() const { return param_; }  // empty: null
  const std::string& code() const { return code_; }    // empty: null
  // "invalid_request_error" for 4xx, "server_error" for 5xx.
  std::string type() const;
  std::string body() const;  // the JSON

 private:
  int status_;
  std::string param_, code_;
};

enum class Endpoint : uint8_t { completions, chat };

struct PromptInput {
  std::string text;          // when !is_ids
  std::vector<int32_t> ids;  // when is_ids: used as given (no <s> added)
  bool is_ids = false;
};

struct ApiRequest {
  Endpoint endpoint = Endpoint::completions;
  std::string model;                  // empty when the request names none
  std::vector<PromptInput> prompts;   // completions: one choice each
  json::Value messages;               // chat: as the template sees them (parse_api_request)
  json::Value template_variables;     // chat: tools, documents, chat_template_kwargs' members
  bool add_generation_prompt = true;  // chat: vLLM's field; the assistant's turn is opened
  std::optional<int64_t> max_tokens;  // absent: the endpoint's default (see resolve_max_tokens)
  std::string max_tokens_field;       // the field it came from, for errors
  SamplingParams sampling;
  bool seed_given = false;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// Parses and checks a request body (JSON). Throws ApiError (400) naming the field at fault.
ApiRequest parse_api_request(Endpoint endpoint, std::string_view body);

// The completion budget of a prompt of `prompt_tokens` in a context of `context` positions:
// max_tokens as given, else 16 for completions (OpenAI's default) and the rest of the context for
// chat. Throws ApiError (400, code context_length_exceeded) when prompt + completion exceed the
// context, naming both numbers.
int64_t resolve_max_tokens(const ApiRequest& request, int64_t prompt_tokens, int64_t context);

// One finished choice.
struct ChoiceResult {
  std::string text;
  FinishReason finish = FinishReason::stop;
  int64_t completion_tokens = 0;
};

// What every reply and chunk of one request shares.
struct ReplyHeader {
  Endpoint endpoint = Endpoint::completions;
  std::string id;  // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;
  std::string model;
};

ReplyHeader make_reply_header(Endpoint endpoint, const std::string& model);

// The whole reply (non-streaming). `prompt_tokens` sums over the choices' prompts.
std::string completion_reply(const ReplyHeader& header, const std::vector<ChoiceResult>& choices,
                             int64_t prompt_tokens);

// One Server-Sent Event (`data: {...}\n\n`) for choice `index`: new text, and/or its finish
// reason (FinishReason::none: not finished). Chat's first chunk of a choice carries the role.
struct ChunkContent {
  size_t index = 0;
  std::string text;
  FinishReason finish = FinishReason::none;
  bool first = false;  // chat: add "role": "assistant"
};
std::string stream_event(const ReplyHeader& header, const ChunkContent& content,
                         bool include_usage);
// The last chunk when stream_options.include_usage: no choices, the usage.
std::string usage_event(const ReplyHeader& header, int64_t prompt_tokens,
                        int64_t completion_tokens);
// An error inside a stream, after the 200 went out: `data: {"error": ...}\n\n`.
std::string error_event(const ApiError& error);
constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

// GET /v1/models: one entry per served model.
struct ModelListing {
  std::string name;
  int64_t max_model_len = 0;
};
std::string models_reply(const std::vector<ModelListing>& models, int64_t created);

}  // namespace zerotune::serve
