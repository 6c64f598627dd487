// A Jinja interpreter that renders what Python's jinja2 renders, configured as transformers
// configures it for chat templates: ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True, extensions=[loopcontrols, the {% generation %} tag]), keep_trailing_newline
// off, default Undefined, `tojson` as json.dumps(ensure_ascii=False), and the globals
// raise_exception(message) and strftime_now(format).
//
// Templates come from model folders, so parsing and rendering are bounded (Limits): source size,
// nesting, loop iterations, macro depth, output size and the total size of values built.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/check.h"
#include "data/jinja_value.h"

namespace zerotune::jinja {

// Syntax and runtime errors, as "origin:line: what happened".
class TemplateError : public Error {
 public:
  explicit TemplateError(const std::string& what) : Error(what) {}
};

// raise_exception(message) called by the template: what() is the message alone, as transformers
// surfaces jinja2's TemplateError(message).
class RaisedError : public Error {
 public:
  explicit RaisedError(const std::string& message) : Error(message) {}
};

struct Limits {
  int64_t max_source_bytes = 1 << 20;
  int64_t max_nesting = 100;              // parser: nested expressions and blocks
  int64_t max_output_bytes = 16 << 20;    // the rendered text, and any one string built
  int64_t max_loop_iterations = 1000000;  // all loops of one render together
  int64_t max_call_depth = 50;            // nested macro calls
  int64_t max_range = 100000;             // range(): jinja2's sandbox MAX_RANGE
  int64_t max_work = int64_t{1} << 28;    // bytes and elements of all values built in one render
};

using Variables = std::vector<std::pair<std::string, Value>>;

struct Program;  // the parsed template (jinja_ast.h)

class Template {
 public:
  // Parses `source`; errors throw TemplateError naming `origin` and the line.
  static Template parse(std::string_view source, std::string origin, Limits limits = {});

  // Renders with `variables` (later entries win) over the globals. `now` is what strftime_now()
  // formats (local time).
  std::string render(const Variables& variables) const;
  std::string render(const Variables& variables, std::time_t now) const;

  const std::string& origin() const;

 private:
  explicit Template(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const Program> program_;
};

}  // namespace zerotune::jinja
