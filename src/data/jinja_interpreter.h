// Renders a parsed template (jinja_ast.h): scopes as jinja2 frames behave (a loop body and a macro
// keep their assignments, an if does not), attribute and item lookup as jinja2's sandbox does
// them, macros, the loop variable, and the bounds of Limits.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/jinja_ast.h"

namespace zerotune::jinja {

class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent = nullptr) : parent_(std::move(parent)) {}
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value value);
  void clear() { variables_.clear(); }

 private:
  std::shared_ptr<Scope> parent_;
  std::vector<std::pair<std::string, Value>> variables_;
};

// Binds Python-style call arguments to a builtin's parameters; `defaults` holds one entry per
// parameter, undefined-without-message for a required one.
struct Param {
  const char* name;
  Value default_value;
  bool required = false;
};
std::vector<Value> bind(const Arguments& args, const std::vector<Param>& params,
                        std::string_view function);

class Interpreter {
 public:
  Interpreter(const Program& program, const Variables& variables, std::time_t now);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;
  std::string render();

  // A namespace() made by this render; cleared when the render ends, since a template can make
  // one hold itself (a cycle that reference counting would never free).
  void track(std::shared_ptr<Namespace> space) { namespaces_.push_back(std::move(space)); }

  // jinja2 sandbox lookups: `obj.name` and `obj[key]`.
  Value getattr(const Value& object, std::string_view name);
  Value getitem(const Value& object, const Value& key);
  Value call(const Value& callee, Arguments args);
  Value call_macro(const Node& node, const std::shared_ptr<Scope>& closure, Arguments args,
                   bool is_caller);

  // Bounds: `amount` bytes or elements built; a string must stay under the output limit.
  void charge(int64_t amount);
  const std::string& checked(const std::string& s);
  const Limits& limits() const { return program_.limits; }
  std::time_t now() const { return now_; }

 private:
  enum class Flow { normal, break_loop, continue_loop };

  Flow render_body(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow render_node(const Node& node, const std::shared_ptr<Scope>& scope, std::string& out);
  void render_for(const Node& node, const std::shared_ptr<Scope>& scope, std::string& out);
  void render_call_block(const Node& node, const std::shared_ptr<Scope>& scope, std::string& out);
  void assign(const Target& target, const Value& value, Scope& scope);
  std::string render_to_string(const Body& body, const std::shared_ptr<Scope>& scope);
  Value apply_filter_chain(const Expr& filter, Value operand, const std::shared_ptr<Scope>& scope);

  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_unchecked(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_slice(const Value& object, const Expr& slice, const std::shared_ptr<Scope>& scope);
  Arguments eval_arguments(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope);
  Value getattr_builtin(const Value& object, std::string_view name);

  [[noreturn]] void fail(int line, const std::string& message) const;

  const Program& program_;
  std::time_t now_;
  std::shared_ptr<Scope> root_;
  int64_t iterations_ = 0;
  int64_t work_ = 0;
  int64_t call_depth_ = 0;
  // Scopes that hold macros (a macro holds its scope: a cycle) and namespaces, cleared at the end.
  std::vector<std::shared_ptr<Scope>> macro_scopes_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
};

// Builtins (jinja_builtins.cc): filters, tests, str/dict/list methods, operators, globals.
Value apply_filter(Interpreter& in, const std::string& name, const Value& operand,
                   const Arguments& args);
bool apply_test(Interpreter& in, const std::string& name, const Value& operand,
                const Arguments& args);
// A method of a str, dict or list as a callable value (an undefined value whose use fails for
// the ones the immutable sandbox forbids), or nothing when the type has no such attribute.
std::optional<Value> method_of(const Value& receiver, std::string_view name);
// Python's iter(value) materialised: elements, a dict's keys, a string's characters.
ValueList iterate(const Value& value);
// + - * / // % ** on Python values, `item in container`, unary minus.
Value binary_op(Interpreter& in, std::string_view op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);
Value negate(const Value& v);
void add_globals(Scope& scope);

}  // namespace zerotune::jinja
