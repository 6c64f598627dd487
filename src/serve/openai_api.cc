#include "serve/openai_api.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <utility>

#include "core/check.h"
#include "core/json.h"

namespace zerotune::serve {

namespace {

using json::Value;

[[noreturn]] void bad_field(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param);
}

// The typed accessors of json::Value throw zerotune::Error naming the field; as a reply, that is
// a 400 whose param is the field.
template <typename Read>
auto read_field(const std::string& param, Read&& read) {
  try {
    return read();
  } catch (const Error& e) {
    bad_field(param, e.what());
  }
}

std::string quoted(const std::string& field) {
  return "\"" + field + "\"";
}

const Value* present(const Value& object, const std::string& field) {
  const Value* value = object.find(field);
  return value == nullptr || value->is_null() ? nullptr : value;
}

std::optional<double> number_field(const Value& object, const std::string& field) {
  const Value* value = present(object, field);
  if (value == nullptr) return std::nullopt;
  return read_field(field, [&] { return value->as_double(quoted(field)); });
}

std::optional<int64_t> int_field(const Value& object, const std::string& field) {
  const Value* value = present(object, field);
  if (value == nullptr) return std::nullopt;
  return read_field(field, [&] { return value->as_int64(quoted(field)); });
}

std::optional<bool> bool_field(const Value& object, const std::string& field) {
  const Value* value = present(object, field);
  if (value == nullptr) return std::nullopt;
  return read_field(field, [&] { return value->as_bool(quoted(field)); });
}

std::vector<int32_t> token_ids(const Value& list, const std::string& where) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < list.items().size(); ++i) {
    const std::string item = str(where, "[", i, "]");
    const int64_t id = read_field("prompt", [&] { return list.items()[i].as_int64(item); });
    if (id < 0 || id > INT32_MAX) bad_field("prompt", str(item, " = ", id, " is not a token id"));
    ids.push_back(static_cast<int32_t>(id));
  }
  if (ids.empty()) bad_field("prompt", str(where, " is an empty list of token ids"));
  return ids;
}

// "prompt": a string, a list of strings, a list of token ids, or a list of lists of token ids.
std::vector<PromptInput> parse_prompts(const Value& body) {
  const Value* prompt = present(body, "prompt");
  if (prompt == nullptr) bad_field("prompt", "\"prompt\" is required");
  if (prompt->is_string()) return {PromptInput{prompt->as_string("prompt"), {}, false}};
  if (!prompt->is_array() || prompt->items().empty()) {
    bad_field("prompt",
              str("\"prompt\" must be a string or a non-empty list of strings or of "
                  "token ids, got ",
                  prompt->is_array() ? "an empty list" : Value::kind_name(prompt->kind())));
  }
  const std::vector<Value>& items = prompt->items();
  if (items[0].is_number()) return {PromptInput{{}, token_ids(*prompt, "\"prompt\""), true}};
  std::vector<PromptInput> prompts;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = str("\"prompt\"[", i, "]");
    if (items[i].is_string()) {
      prompts.push_back(PromptInput{items[i].as_string(where), {}, false});
    } else if (items[i].is_array()) {
      prompts.push_back(PromptInput{{}, token_ids(items[i], where), true});
    } else {
      bad_field("prompt", str(where, " must be a string or a list of token ids, got ",
                              Value::kind_name(items[i].kind())));
    }
  }
  return prompts;
}

// A message's "content" for the template: a string and null (an assistant turn that only calls
// tools) as they are; a list of {"type": "text", "text": ...} parts joined into one string, as
// vLLM gives it to templates written for strings.
Value message_content(const Value& content, const std::string& where) {
  if (content.is_string() || content.is_null()) return content;
  const auto& parts = read_field("messages", [&] { return content.as_array(where + ".content"); });
  std::string text;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string part = str(where, ".content[", i, "]");
    const Value* type = parts[i].find("type");
    const Value* part_text = parts[i].find("text");
    if (type == nullptr || !type->is_string() || type->as_string(part) != "text" ||
        part_text == nullptr || !part_text->is_string()) {
      bad_field("messages", part +
                                " must be {\"type\": \"text\", \"text\": \"...\"}: only text "
                                "content is supported");
    }
    text += part_text->as_string(part);
  }
  return Value(text);
}

// "messages" as the template sees them: every member of every message kept (tool_calls, name,
// tool_call_id, ...), the content as message_content() gives it.
Value parse_messages(const Value& body) {
  const Value* messages = present(body, "messages");
  if (messages == nullptr) bad_field("messages", "\"messages\" is required");
  const auto& items =
      read_field("messages", [&] { return messages->as_array(quoted("messages")); });
  if (items.empty()) bad_field("messages", "\"messages\" must not be empty");
  Value out = Value::array();
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = str("\"messages\"[", i, "]");
    if (!items[i].is_object()) {
      bad_field("messages",
                str(where, " must be an object, got ", Value::kind_name(items[i].kind())));
    }
    const Value* role = present(items[i], "role");
    if (role == nullptr) bad_field("messages", where + ".role is required");
    read_field("messages", [&] { return role->as_string(where + ".role"); });
    Value message = Value::object();
    for (const Value::Member& member : items[i].members()) {
      message.set(member.first, member.first == "content" ? message_content(member.second, where)
                                                          : member.second);
    }
    out.push_back(std::move(message));
  }
  return out;
}

// What the chat template sees besides the messages: "tools" (and "documents") when the request
// has them, and vLLM's "chat_template_kwargs" (enable_thinking, ...) merged in.
Value parse_template_variables(const Value& body) {
  Value variables = Value::object();
  for (const char* name : {"tools", "documents"}) {
    if (const Value* list = present(body, name)) {
      read_field(name, [&] { return list->as_array(quoted(name)); });
      variables.set(name, *list);
    }
  }
  if (const Value* extra = present(body, "chat_template_kwargs")) {
    const auto& members = read_field("chat_template_kwargs",
                                     [&] { return extra->as_object("\"chat_template_kwargs\""); });
    for (const Value::Member& member : members) variables.set(member.first, member.second);
  }
  return variables;
}

std::vector<std::string> parse_stop(const Value& body) {
  const Value* stop = present(body, "stop");
  if (stop == nullptr) return {};
  if (stop->is_string()) return {stop->as_string("stop")};
  const auto& items = read_field("stop", [&] { return stop->as_array("\"stop\""); });
  std::vector<std::string> out;
  for (size_t i = 0; i < items.size(); ++i) {
    out.push_back(read_field("stop", [&] { return items[i].as_string(str("\"stop\"[", i, "]")); }));
  }
  return out;
}

SamplingParams parse_sampling(const Value& body, bool* seed_given) {
  SamplingParams p;
  p.temperature = number_field(body, "temperature").value_or(1.0);
  if (!(p.temperature >= 0.0 && p.temperature <= 2.0)) {
    bad_field("temperature", str("\"temperature\" must be in [0, 2], got ", p.temperature));
  }
  p.top_p = number_field(body, "top_p").value_or(1.0);
  if (!(p.top_p > 0.0 && p.top_p <= 1.0)) {
    bad_field("top_p", str("\"top_p\" must be in (0, 1], got ", p.top_p));
  }
  p.top_k = int_field(body, "top_k").value_or(0);
  if (p.top_k == -1) p.top_k = 0;  // vLLM's spelling of "no limit"
  if (p.top_k < 0) bad_field("top_k", str("\"top_k\" must be -1, 0 or positive, got ", p.top_k));
  const std::optional<int64_t> seed = int_field(body, "seed");
  *seed_given = seed.has_value();
  if (seed) p.seed = static_cast<uint64_t>(*seed);
  return p;
}

// Fields asking for what this server does not do: refused, not ignored.
void refuse_unsupported(const Value& body, Endpoint endpoint) {
  if (const std::optional<int64_t> n = int_field(body, "n"); n && *n != 1) {
    bad_field("n", str("\"n\" must be 1 (one choice per prompt), got ", *n));
  }
  if (const std::optional<int64_t> best_of = int_field(body, "best_of"); best_of && *best_of > 1) {
    bad_field("best_of", str("\"best_of\" > 1 is not supported, got ", *best_of));
  }
  if (bool_field(body, "echo").value_or(false)) {
    bad_field("echo", "\"echo\" is not supported");
  }
  // Chat asks for log-probabilities with "logprobs": true, completions with a count.
  const bool wants_logprobs = endpoint == Endpoint::chat
                                  ? bool_field(body, "logprobs").value_or(false)
                                  : present(body, "logprobs") != nullptr;
  if (wants_logprobs) bad_field("logprobs", "\"logprobs\" is not supported");
}

std::string random_hex(size_t digits) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < digits; ++i) out += kHex[rng() % 16];
  return out;
}

Value usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  Value usage = Value::object();
  usage.set("prompt_tokens", prompt_tokens);
  usage.set("completion_tokens", completion_tokens);
  usage.set("total_tokens", prompt_tokens + completion_tokens);
  return usage;
}

Value reply_object(const ReplyHeader& header, bool chunk) {
  Value reply = Value::object();
  reply.set("id", header.id);
  const bool chat = header.endpoint == Endpoint::chat;
  reply.set("object",
            chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
  reply.set("created", header.created);
  reply.set("model", header.model);
  return reply;
}

Value finish_json(FinishReason reason) {
  if (reason == FinishReason::none) return Value();
  return Value(finish_reason_name(reason));
}

}  // namespace

ApiError::ApiError(int status, std::string message, std::string param, std::string code)
    : std::runtime_error(valid_utf8(message)),
      status_(status),
      param_(std::move(param)),
      code_(std::move(code)) {}

std::string ApiError::type() const {
  // OpenAI's types: every client error (401, 404 and 413 included) is an invalid request.
  return status_ >= 500 ? "server_error" : "invalid_request_error";
}

std::string ApiError::body() const {
  Value error = Value::object();
  error.set("message", what());
  error.set("type", type());
  error.set("param", param_.empty() ? Value() : Value(param_));
  error.set("code", code_.empty() ? Value() : Value(code_));
  Value reply = Value::object();
  reply.set("error", std::move(error));
  return reply.dump();
}

ApiRequest parse_api_request(Endpoint endpoint, std::string_view body_text) {
  Value body;
  try {
    body = json::parse(body_text, "request body");
  } catch (const Error& e) {
    throw ApiError(400, str("the request body is not valid JSON: ", e.what()));
  }
  if (!body.is_object()) {
    throw ApiError(
        400, str("the request body must be a JSON object, got ", Value::kind_name(body.kind())));
  }
  ApiRequest request;
  request.endpoint = endpoint;
  if (const Value* model = present(body, "model")) {
    request.model = read_field("model", [&] { return model->as_string("\"model\""); });
  }
  if (endpoint == Endpoint::chat) {
    request.messages = parse_messages(body);
    request.template_variables = parse_template_variables(body);
    request.add_generation_prompt = bool_field(body, "add_generation_prompt").value_or(true);
    request.max_tokens_field =
        present(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  } else {
    request.prompts = parse_prompts(body);
    request.max_tokens_field = "max_tokens";
  }
  request.max_tokens = int_field(body, request.max_tokens_field);
  if (request.max_tokens && *request.max_tokens < 1) {
    bad_field(request.max_tokens_field, str(quoted(request.max_tokens_field),
                                            " must be at least 1, got ", *request.max_tokens));
  }
  request.sampling = parse_sampling(body, &request.seed_given);
  request.stop = parse_stop(body);
  refuse_unsupported(body, endpoint);
  request.stream = bool_field(body, "stream").value_or(false);
  if (const Value* options = present(body, "stream_options")) {
    read_field("stream_options", [&] { return options->as_object("\"stream_options\""); });
    request.include_usage = bool_field(*options, "include_usage").value_or(false);
  }
  return request;
}

int64_t resolve_max_tokens(const ApiRequest& request, int64_t prompt_tokens, int64_t context) {
  const std::string prompt_name = request.endpoint == Endpoint::chat ? "messages" : "prompt";
  if (prompt_tokens >= context) {
    throw ApiError(400,
                   str("This model's maximum context length is ", context,
                       " tokens. However, "
                       "your ",
                       prompt_name, " has ", prompt_tokens,
                       " tokens, which leaves no room for a completion. Please reduce the "
                       "length of the ",
                       prompt_name, "."),
                   prompt_name, "context_length_exceeded");
  }
  const int64_t max_tokens = request.max_tokens.value_or(
      request.endpoint == Endpoint::chat ? context - prompt_tokens : 16);
  if (prompt_tokens + max_tokens > context) {
    throw ApiError(400,
                   str("This model's maximum context length is ", context,
                       " tokens. However, "
                       "you requested ",
                       prompt_tokens + max_tokens, " tokens (", prompt_tokens, " in the ",
                       prompt_name, ", ", max_tokens,
                       " in the completion). Please "
                       "reduce the length of the ",
                       prompt_name, " or ", request.max_tokens_field, "."),
                   request.max_tokens_field, "context_length_exceeded");
  }
  return max_tokens;
}

ReplyHeader make_reply_header(Endpoint endpoint, const std::string& model) {
  ReplyHeader header;
  header.endpoint = endpoint;
  header.id = (endpoint == Endpoint::chat ? "chatcmpl-" : "cmpl-") + random_hex(24);
  header.created = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  header.model = model;
  return header;
}

std::string completion_reply(const ReplyHeader& header, const std::vector<ChoiceResult>& choices,
                             int64_t prompt_tokens) {
  Value reply = reply_object(header, false);
  Value list = Value::array();
  int64_t completion_tokens = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    Value choice = Value::object();
    choice.set("index", i);
    if (header.endpoint == Endpoint::chat) {
      Value message = Value::object();
      message.set("role", "assistant");
      message.set("content", valid_utf8(choices[i].text));
      choice.set("message", std::move(message));
    } else {
      choice.set("text", valid_utf8(choices[i].text));
    }
    choice.set("logprobs", Value());
    choice.set("finish_reason", finish_json(choices[i].finish));
    list.push_back(std::move(choice));
    completion_tokens += choices[i].completion_tokens;
  }
  reply.set("choices", std::move(list));
  reply.set("usage", usage_json(prompt_tokens, completion_tokens));
  return reply.dump();
}

std::string stream_event(const ReplyHeader& header, const ChunkContent& content,
                         bool include_usage) {
  Value reply = reply_object(header, true);
  Value choice = Value::object();
  choice.set("index", content.index);
  if (header.endpoint == Endpoint::chat) {
    Value delta = Value::object();
    if (content.first) delta.set("role", "assistant");
    if (content.first || !content.text.empty()) delta.set("content", valid_utf8(content.text));
    choice.set("delta", std::move(delta));
  } else {
    choice.set("text", valid_utf8(content.text));
  }
  choice.set("logprobs", Value());
  choice.set("finish_reason", finish_json(content.finish));
  Value list = Value::array();
  list.push_back(std::move(choice));
  reply.set("choices", std::move(list));
  if (include_usage) reply.set("usage", Value());
  return "data: " + reply.dump() + "\n\n";
}

std::string usage_event(const ReplyHeader& header, int64_t prompt_tokens,
                        int64_t completion_tokens) {
  Value reply = reply_object(header, true);
  reply.set("choices", Value::array());
  reply.set("usage", usage_json(prompt_tokens, completion_tokens));
  return "data: " + reply.dump() + "\n\n";
}

std::string error_event(const ApiError& error) {
  return "data: " + error.body() + "\n\n";
}

std::string models_reply(const std::vector<ModelListing>& models, int64_t created) {
  Value data = Value::array();
  for (const ModelListing& model : models) {
    Value entry = Value::object();
    entry.set("id", model.name);
    entry.set("object", "model");
    entry.set("created", created);
    entry.set("owned_by", "zerotune");
    entry.set("max_model_len", model.max_model_len);
    data.push_back(std::move(entry));
  }
  Value reply = Value::object();
  reply.set("object", "list");
  reply.set("data", std::move(data));
  return reply.dump();
}

}  // namespace zerotune::serve
