#include "data/jinja_interpreter.h"

#include <algorithm>
#include <map>

#include "data/jinja_text.h"

namespace zerotune::jinja {
namespace {

// "dict object", "str object", ... and "None", as jinja2's object_type_repr writes them.
std::string object_type_repr(const Value& v) {
  return v.is_none() ? "None" : v.type_name() + " object";
}

Value no_attribute(const Value& object, std::string_view name) {
  return Value::undefined("'" + object_type_repr(object) + "' has no attribute '" +
                          std::string(name) + "'");
}

Value no_element(const Value& object, const Value& key) {
  if (key.is_string()) return no_attribute(object, key.string());
  return Value::undefined(object_type_repr(object) + " has no element " + repr(key));
}

bool references_name(const Expr* e, std::string_view name);
bool references_name(const Body& body, std::string_view name);

bool references_name(const Expr* e, std::string_view name) {
  if (!e) return false;
  if (e->kind == Expr::Kind::name && e->name == name) return true;
  for (const ExprPtr& child : e->children) {
    if (references_name(child.get(), name)) return true;
  }
  for (const auto& [key, value] : e->kwargs) {
    if (references_name(value.get(), name)) return true;
  }
  return false;
}

bool references_name(const Body& body, std::string_view name) {
  for (const NodePtr& node : body) {
    if (node->kind == Node::Kind::macro) continue;  // a nested macro has its own
    if (references_name(node->expr.get(), name) || references_name(node->condition.get(), name) ||
        references_name(node->filter.get(), name) || references_name(node->body, name) ||
        references_name(node->else_body, name)) {
      return true;
    }
    for (const auto& [test, branch] : node->branches) {
      if (references_name(test.get(), name) || references_name(branch, name)) return true;
    }
    for (const auto& [target, value] : node->assignments) {
      if (references_name(value.get(), name)) return true;
    }
  }
  return false;
}

// A {% macro %}, or the `caller` of a {% call %} block.
class MacroObject : public Object {
 public:
  MacroObject(const Node& node, std::shared_ptr<Scope> closure, bool is_caller)
      : node_(node), closure_(std::move(closure)), is_caller_(is_caller) {}
  std::string type_name() const override { return "Macro"; }
  std::string repr() const override { return "<Macro '" + name() + "'>"; }
  bool callable() const override { return true; }
  Value call(Interpreter& in, Arguments args) override {
    return in.call_macro(node_, closure_, std::move(args), is_caller_);
  }
  Value attribute(std::string_view attribute) const override {
    if (attribute == "name") return Value(name());
    if (attribute == "arguments") {
      ValueList names(node_.params.begin(), node_.params.end());
      return Value::sequence(std::move(names), SequenceKind::tuple);
    }
    return Object::attribute(attribute);
  }

 private:
  std::string name() const { return is_caller_ ? "caller" : node_.text; }
  const Node& node_;
  std::shared_ptr<Scope> closure_;
  bool is_caller_;
};

// The `loop` variable of a {% for %}.
class LoopObject : public Object {
 public:
  explicit LoopObject(std::shared_ptr<const ValueList> items) : items_(std::move(items)) {}
  std::string type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index0_ + 1) + "/" + std::to_string(length()) + ">";
  }
  void set_index(int64_t index0) { index0_ = index0; }

  Value attribute(std::string_view name) const override {
    const int64_t n = length();
    if (name == "index") return Value(index0_ + 1);
    if (name == "index0") return Value(index0_);
    if (name == "revindex") return Value(n - index0_);
    if (name == "revindex0") return Value(n - index0_ - 1);
    if (name == "first") return Value(index0_ == 0);
    if (name == "last") return Value(index0_ == n - 1);
    if (name == "length") return Value(n);
    if (name == "depth") return Value(int64_t{1});
    if (name == "depth0") return Value(int64_t{0});
    if (name == "previtem") {
      if (index0_ > 0) return (*items_)[index0_ - 1];
      return Value::undefined("there is no previous item");
    }
    if (name == "nextitem") {
      if (index0_ + 1 < n) return (*items_)[index0_ + 1];
      return Value::undefined("there is no next item");
    }
    if (name == "cycle") return Value::object(std::make_shared<Cycle>(index0_));
    return Object::attribute(name);
  }

 private:
  class Cycle : public Object {
   public:
    explicit Cycle(int64_t index0) : index0_(index0) {}
    std::string type_name() const override { return "method"; }
    bool callable() const override { return true; }
    Value call(Interpreter&, Arguments args) override {
      if (args.positional.empty()) throw Fault("no items for cycling given");
      return args.positional[index0_ % static_cast<int64_t>(args.positional.size())];
    }

   private:
    int64_t index0_;
  };

  int64_t length() const { return static_cast<int64_t>(items_->size()); }
  std::shared_ptr<const ValueList> items_;
  int64_t index0_ = 0;
};

// Python's slice.indices(): the positions a[start:stop:step] takes from a sequence of `length`.
std::vector<int64_t> slice_positions(int64_t length, const Value& start_v, const Value& stop_v,
                                     const Value& step_v) {
  const int64_t step = step_v.is_none() ? 1 : step_v.integer();
  if (step == 0) throw Fault("slice step cannot be zero");
  auto adjust = [&](const Value& v, int64_t fallback) {
    if (v.is_none()) return fallback;
    int64_t i = v.integer();
    if (i < 0) {
      i += length;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= length) {
      i = step < 0 ? length - 1 : length;
    }
    return i;
  };
  const int64_t start = adjust(start_v, step < 0 ? length - 1 : 0);
  const int64_t stop = adjust(stop_v, step < 0 ? -1 : length);
  std::vector<int64_t> positions;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) positions.push_back(i);
  return positions;
}

}  // namespace

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent_.get()) {
    for (auto it = s->variables_.rbegin(); it != s->variables_.rend(); ++it) {
      if (it->first == name) return &it->second;
    }
  }
  return nullptr;
}

void Scope::set(const std::string& name, Value value) {
  for (auto& [key, existing] : variables_) {
    if (key == name) {
      existing = std::move(value);
      return;
    }
  }
  variables_.emplace_back(name, std::move(value));
}

std::vector<Value> bind(const Arguments& args, const std::vector<Param>& params,
                        std::string_view function) {
  const std::string fn(function);
  if (args.positional.size() > params.size()) {
    throw Fault(fn + "() takes at most " + std::to_string(params.size()) + " argument(s) (" +
                std::to_string(args.positional.size()) + " given)");
  }
  std::vector<Value> bound(params.size());
  std::vector<bool> given(params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i)
    bound[i] = args.positional[i], given[i] = true;
  for (const auto& [name, value] : args.named) {
    size_t i = 0;
    while (i < params.size() && name != params[i].name) ++i;
    if (i == params.size())
      throw Fault(fn + "() got an unexpected keyword argument '" + name + "'");
    if (given[i]) throw Fault(fn + "() got multiple values for argument '" + name + "'");
    bound[i] = value, given[i] = true;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (given[i]) continue;
    if (params[i].required) {
      throw Fault(fn + "() missing required argument '" + std::string(params[i].name) + "'");
    }
    bound[i] = params[i].default_value;
  }
  return bound;
}

Interpreter::Interpreter(const Program& program, const Variables& variables, std::time_t now)
    : program_(program), now_(now), root_(std::make_shared<Scope>()) {
  add_globals(*root_);
  for (const auto& [name, value] : variables) root_->set(name, value);
}

Interpreter::~Interpreter() {
  for (const auto& scope : macro_scopes_) scope->clear();
  for (const auto& space : namespaces_) space->clear();
}

std::string Interpreter::render() {
  std::string out;
  render_body(program_.body, std::make_shared<Scope>(root_), out);
  return out;
}

void Interpreter::fail(int line, const std::string& message) const {
  throw TemplateError(program_.origin + ":" + std::to_string(line) + ": " + message);
}

void Interpreter::charge(int64_t amount) {
  work_ += amount;
  if (work_ > limits().max_work) {
    throw Fault("rendering built more than " + std::to_string(limits().max_work) +
                " bytes and elements; the template is too expensive");
  }
}

const std::string& Interpreter::checked(const std::string& s) {
  if (static_cast<int64_t>(s.size()) > limits().max_output_bytes) {
    throw Fault("a string of " + std::to_string(s.size()) + " bytes is over the limit of " +
                std::to_string(limits().max_output_bytes));
  }
  charge(static_cast<int64_t>(s.size()));
  return s;
}

Interpreter::Flow Interpreter::render_body(const Body& body, const std::shared_ptr<Scope>& scope,
                                           std::string& out) {
  for (const NodePtr& node : body) {
    const Flow flow = render_node(*node, scope, out);
    if (static_cast<int64_t>(out.size()) > limits().max_output_bytes) {
      fail(node->line, "rendered text is over the limit of " +
                           std::to_string(limits().max_output_bytes) + " bytes");
    }
    if (flow != Flow::normal) return flow;
  }
  return Flow::normal;
}

std::string Interpreter::render_to_string(const Body& body, const std::shared_ptr<Scope>& scope) {
  std::string out;
  render_body(body, scope, out);
  return out;
}

Value Interpreter::apply_filter_chain(const Expr& filter, Value operand,
                                      const std::shared_ptr<Scope>& scope) {
  // The chain nests outward: the innermost filter (null operand) applies first.
  if (filter.children[0])
    operand = apply_filter_chain(*filter.children[0], std::move(operand), scope);
  Arguments args = eval_arguments(filter, 1, scope);
  try {
    return apply_filter(*this, filter.name, operand, args);
  } catch (const Fault& f) {
    fail(filter.line, f.what());
  }
}

Interpreter::Flow Interpreter::render_node(const Node& node, const std::shared_ptr<Scope>& scope,
                                           std::string& out) {
  switch (node.kind) {
    case Node::Kind::text:
      out += node.text;
      break;
    case Node::Kind::output:
      out += to_str(eval(*node.expr, scope));
      break;
    case Node::Kind::if_:
      for (const auto& [test, body] : node.branches) {
        if (eval(*test, scope).truthy()) return render_body(body, scope, out);
      }
      return render_body(node.else_body, scope, out);
    case Node::Kind::for_:
      render_for(node, scope, out);
      break;
    case Node::Kind::set:
      assign(node.target, eval(*node.expr, scope), *scope);
      break;
    case Node::Kind::set_block: {
      Value value(render_to_string(node.body, std::make_shared<Scope>(scope)));
      if (node.filter) value = apply_filter_chain(*node.filter, std::move(value), scope);
      assign(node.target, value, *scope);
      break;
    }
    case Node::Kind::macro:
      scope->set(node.text, Value::object(std::make_shared<MacroObject>(node, scope, false)));
      macro_scopes_.push_back(scope);
      break;
    case Node::Kind::call_block:
      render_call_block(node, scope, out);
      break;
    case Node::Kind::filter_block: {
      Value body(render_to_string(node.body, std::make_shared<Scope>(scope)));
      out += to_str(apply_filter_chain(*node.filter, std::move(body), scope));
      break;
    }
    case Node::Kind::with: {
      auto inner = std::make_shared<Scope>(scope);
      for (const auto& [target, value] : node.assignments)
        assign(target, eval(*value, scope), *inner);
      return render_body(node.body, inner, out);
    }
    case Node::Kind::break_:
      return Flow::break_loop;
    case Node::Kind::continue_:
      return Flow::continue_loop;
    case Node::Kind::scope:
      render_body(node.body, std::make_shared<Scope>(scope), out);
      break;
  }
  return Flow::normal;
}

void Interpreter::render_for(const Node& node, const std::shared_ptr<Scope>& scope,
                             std::string& out) {
  ValueList all;
  try {
    all = iterate(eval(*node.expr, scope));
  } catch (const Fault& f) {
    fail(node.line, f.what());
  }
  auto items = std::make_shared<ValueList>();
  for (Value& item : all) {
    if (node.condition) {
      auto test_scope = std::make_shared<Scope>(scope);
      assign(node.target, item, *test_scope);
      if (!eval(*node.condition, test_scope).truthy()) continue;
    }
    items->push_back(std::move(item));
  }
  auto loop = std::make_shared<LoopObject>(items);
  const Value loop_value = Value::object(loop);
  for (size_t i = 0; i < items->size(); ++i) {
    if (++iterations_ > limits().max_loop_iterations) {
      fail(node.line,
           "loops ran more than " + std::to_string(limits().max_loop_iterations) + " iterations");
    }
    auto iteration = std::make_shared<Scope>(scope);
    loop->set_index(static_cast<int64_t>(i));
    iteration->set("loop", loop_value);
    assign(node.target, (*items)[i], *iteration);
    if (render_body(node.body, iteration, out) == Flow::break_loop) break;
  }
  if (items->empty()) render_body(node.else_body, std::make_shared<Scope>(scope), out);
}

void Interpreter::render_call_block(const Node& node, const std::shared_ptr<Scope>& scope,
                                    std::string& out) {
  const Expr& call_expr = *node.expr;
  Value callee = eval(*call_expr.children[0], scope);
  Arguments args = eval_arguments(call_expr, 1, scope);
  args.named.emplace_back("caller",
                          Value::object(std::make_shared<MacroObject>(node, scope, true)));
  try {
    out += to_str(call(callee, std::move(args)));
  } catch (const Fault& f) {
    fail(node.line, f.what());
  }
}

void Interpreter::assign(const Target& target, const Value& value, Scope& scope) {
  switch (target.kind) {
    case Target::Kind::name:
      scope.set(target.name, value);
      return;
    case Target::Kind::namespace_attribute: {
      const Value* ns = scope.find(target.name);
      auto* space = ns && ns->is_object() ? dynamic_cast<Namespace*>(ns->object()) : nullptr;
      if (!space) fail(target.line, "cannot assign attribute on non-namespace object");
      space->set(target.attribute, value);
      return;
    }
    case Target::Kind::tuple:
      break;
  }
  ValueList items;
  try {
    items = iterate(value);
  } catch (const Fault& f) {
    fail(target.line, std::string("cannot unpack non-iterable ") + value.type_name() + " object");
  }
  const size_t expected = target.elements.size();
  if (items.size() < expected) {
    fail(target.line, "not enough values to unpack (expected " + std::to_string(expected) +
                          ", got " + std::to_string(items.size()) + ")");
  }
  if (items.size() > expected) {
    fail(target.line, "too many values to unpack (expected " + std::to_string(expected) + ")");
  }
  for (size_t i = 0; i < expected; ++i) assign(target.elements[i], items[i], scope);
}

Value Interpreter::call_macro(const Node& node, const std::shared_ptr<Scope>& closure,
                              Arguments args, bool is_caller) {
  const std::string name = is_caller ? "caller" : node.text;
  if (call_depth_ >= limits().max_call_depth) {
    throw Fault("macro calls nested deeper than " + std::to_string(limits().max_call_depth));
  }
  const bool catch_varargs = references_name(node.body, "varargs");
  const bool catch_kwargs = references_name(node.body, "kwargs");
  const bool catch_caller = references_name(node.body, "caller");
  const size_t n = node.params.size();
  if (args.positional.size() > n && !catch_varargs) {
    throw Fault("macro '" + name + "' takes not more than " + std::to_string(n) + " argument(s)");
  }
  auto scope = std::make_shared<Scope>(closure);
  std::vector<bool> filled(n, false);
  for (size_t i = 0; i < std::min(n, args.positional.size()); ++i) {
    scope->set(node.params[i], args.positional[i]);
    filled[i] = true;
  }
  Dict extra_kwargs;
  Value caller = Value::undefined("No caller defined");
  for (auto& [key, value] : args.named) {
    const auto it = std::find(node.params.begin(), node.params.end(), key);
    if (it != node.params.end()) {
      const size_t i = it - node.params.begin();
      if (filled[i])
        throw Fault("macro '" + name + "' got multiple values for argument '" + key + "'");
      scope->set(key, value);
      filled[i] = true;
    } else if (key == "caller" && catch_caller) {
      caller = value;
    } else if (catch_kwargs) {
      extra_kwargs.set(Value(key), value);
    } else {
      throw Fault("macro '" + name + "' takes no keyword argument '" + key + "'");
    }
  }
  const size_t first_default = n - node.defaults.size();
  for (size_t i = 0; i < n; ++i) {
    if (filled[i]) continue;
    scope->set(node.params[i],
               i >= first_default
                   ? eval(*node.defaults[i - first_default], scope)
                   : Value::undefined("parameter '" + node.params[i] + "' was not provided"));
  }
  if (catch_varargs) {
    ValueList extra(args.positional.begin() + std::min(n, args.positional.size()),
                    args.positional.end());
    scope->set("varargs", Value::sequence(std::move(extra), SequenceKind::tuple));
  }
  if (catch_kwargs) scope->set("kwargs", Value::dict(std::move(extra_kwargs)));
  if (catch_caller) scope->set("caller", caller);
  ++call_depth_;
  struct Leave {
    int64_t& depth;
    ~Leave() { --depth; }
  } leave{call_depth_};
  return Value(checked(render_to_string(node.body, scope)));
}

Value Interpreter::call(const Value& callee, Arguments args) {
  if (callee.is_undefined()) fail_undefined(callee);
  if (!callee.is_object() || !callee.object()->callable()) {
    throw Fault("'" + callee.type_name() + "' object is not callable");
  }
  return callee.object()->call(*this, std::move(args));
}

Value Interpreter::getattr(const Value& object, std::string_view name) {
  switch (object.kind()) {
    case Value::Kind::undefined:
      fail_undefined(object);
    case Value::Kind::object:
      return object.object()->attribute(name);
    case Value::Kind::string:
    case Value::Kind::list:
    case Value::Kind::dict: {
      if (std::optional<Value> method = method_of(object, name)) return *method;
      if (object.is_dict()) {
        if (const Value* v = object.entries().find(name)) return *v;
      }
      break;
    }
    default:
      break;
  }
  return no_attribute(object, name);
}

Value Interpreter::getitem(const Value& object, const Value& key) {
  if (object.is_undefined()) fail_undefined(object);
  const bool integral_key = key.is_int() || key.is_bool();
  if (object.is_dict() && hashable(key)) {
    if (const Value* v = object.entries().find(key)) return *v;
  } else if (object.is_list_or_tuple() && integral_key) {
    const ValueList& items = object.items();
    int64_t i = key.integer();
    if (i < 0) i += static_cast<int64_t>(items.size());
    if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[i];
    return no_element(object, key);
  } else if (object.is_string() && integral_key) {
    const std::u32string cps = text::decode(object.string());
    int64_t i = key.integer();
    if (i < 0) i += static_cast<int64_t>(cps.size());
    if (i >= 0 && i < static_cast<int64_t>(cps.size()))
      return Value(text::encode(cps.substr(i, 1)));
    return no_element(object, key);
  }
  // jinja2 falls back to the attribute of that name (a method, a namespace member).
  if (key.is_string()) {
    if (object.is_object()) return object.object()->attribute(key.string());
    if (std::optional<Value> method = method_of(object, key.string())) return *method;
  }
  return no_element(object, key);
}

Arguments Interpreter::eval_arguments(const Expr& e, size_t first,
                                      const std::shared_ptr<Scope>& scope) {
  Arguments args;
  for (size_t i = first; i < e.children.size(); ++i)
    args.positional.push_back(eval(*e.children[i], scope));
  for (const auto& [key, value] : e.kwargs) args.named.emplace_back(key, eval(*value, scope));
  return args;
}

Value Interpreter::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  try {
    return eval_unchecked(e, scope);
  } catch (const Fault& f) {
    fail(e.line, f.what());
  }
}

Value Interpreter::eval_slice(const Value& object, const Expr& slice,
                              const std::shared_ptr<Scope>& scope) {
  Value parts[3];
  for (int k = 0; k < 3; ++k) {
    parts[k] = slice.children[k] ? eval(*slice.children[k], scope) : Value::none();
  }
  if (object.is_undefined()) fail_undefined(object);
  const bool indices_ok = std::all_of(std::begin(parts), std::end(parts), [](const Value& v) {
    return v.is_none() || v.is_int() || v.is_bool();
  });
  const bool sliceable = object.is_string() || object.is_list_or_tuple();
  if (!indices_ok || !sliceable) {
    return Value::undefined(object_type_repr(object) + " has no element slice(" + repr(parts[0]) +
                            ", " + repr(parts[1]) + ", " + repr(parts[2]) + ")");
  }
  if (object.is_string()) {
    const std::u32string cps = text::decode(object.string());
    std::u32string out;
    for (int64_t i :
         slice_positions(static_cast<int64_t>(cps.size()), parts[0], parts[1], parts[2])) {
      out += cps[i];
    }
    charge(static_cast<int64_t>(out.size()));
    return Value(text::encode(out));
  }
  const ValueList& items = object.items();
  ValueList out;
  for (int64_t i :
       slice_positions(static_cast<int64_t>(items.size()), parts[0], parts[1], parts[2])) {
    out.push_back(items[i]);
  }
  charge(static_cast<int64_t>(out.size()));
  return Value::sequence(std::move(out), object.sequence_kind());
}

Value Interpreter::eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value left = eval(*e.children[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.children[i + 1], scope);
    const std::string& op = e.ops[i];
    bool result;
    if (op == "==") {
      result = equals(left, right);
    } else if (op == "!=") {
      result = !equals(left, right);
    } else if (op == "in") {
      result = contains(right, left);
    } else if (op == "not in") {
      result = !contains(right, left);
    } else if (op == "<") {
      result = less(left, right, op);
    } else if (op == "<=") {
      result = less(left, right, op) || equals(left, right);
    } else if (op == ">") {
      less(left, right, op);  // faults for unordered kinds, naming them in this order
      result = less(right, left, op);
    } else {
      result = !less(left, right, op) && (less(right, left, op) || equals(left, right));
    }
    if (!result) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Interpreter::eval_unchecked(const Expr& e, const std::shared_ptr<Scope>& scope) {
  switch (e.kind) {
    case Expr::Kind::constant:
      return e.constant;
    case Expr::Kind::name: {
      if (const Value* v = scope->find(e.name)) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case Expr::Kind::list:
    case Expr::Kind::tuple: {
      ValueList items;
      for (const ExprPtr& child : e.children) items.push_back(eval(*child, scope));
      charge(static_cast<int64_t>(items.size()));
      return Value::sequence(std::move(items),
                             e.kind == Expr::Kind::list ? SequenceKind::list : SequenceKind::tuple);
    }
    case Expr::Kind::dict: {
      Dict entries;
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value key = eval(*e.children[i], scope);
        entries.set(std::move(key), eval(*e.children[i + 1], scope));
      }
      charge(static_cast<int64_t>(entries.size()));
      return Value::dict(std::move(entries));
    }
    case Expr::Kind::getattr:
      return getattr(eval(*e.children[0], scope), e.name);
    case Expr::Kind::getitem: {
      Value object = eval(*e.children[0], scope);
      if (e.children[1]->kind == Expr::Kind::slice)
        return eval_slice(object, *e.children[1], scope);
      return getitem(object, eval(*e.children[1], scope));
    }
    case Expr::Kind::slice:
      throw Fault("a slice is only valid inside [ ]");
    case Expr::Kind::call: {
      Value callee = eval(*e.children[0], scope);
      return call(callee, eval_arguments(e, 1, scope));
    }
    case Expr::Kind::filter: {
      Value operand = eval(*e.children[0], scope);
      return apply_filter(*this, e.name, operand, eval_arguments(e, 1, scope));
    }
    case Expr::Kind::test: {
      Value operand = eval(*e.children[0], scope);
      return Value(apply_test(*this, e.name, operand, eval_arguments(e, 1, scope)));
    }
    case Expr::Kind::negate:
      return negate(eval(*e.children[0], scope));
    case Expr::Kind::plus: {
      Value v = eval(*e.children[0], scope);
      if (v.is_undefined()) fail_undefined(v);
      if (!v.is_number()) throw Fault("bad operand type for unary +: '" + v.type_name() + "'");
      return v.is_bool() ? Value(v.integer()) : v;
    }
    case Expr::Kind::logical_not:
      return Value(!eval(*e.children[0], scope).truthy());
    case Expr::Kind::binary:
      return binary_op(*this, e.name, eval(*e.children[0], scope), eval(*e.children[1], scope));
    case Expr::Kind::logical_and: {
      Value left = eval(*e.children[0], scope);
      return left.truthy() ? eval(*e.children[1], scope) : left;
    }
    case Expr::Kind::logical_or: {
      Value left = eval(*e.children[0], scope);
      return left.truthy() ? left : eval(*e.children[1], scope);
    }
    case Expr::Kind::concat: {
      std::string joined;
      for (const ExprPtr& child : e.children) joined += to_str(eval(*child, scope));
      return Value(checked(joined));
    }
    case Expr::Kind::compare:
      return eval_compare(e, scope);
    case Expr::Kind::condition: {
      if (eval(*e.children[0], scope).truthy()) return eval(*e.children[1], scope);
      if (e.children[2]) return eval(*e.children[2], scope);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
    }
  }
  return Value();
}

}  // namespace zerotune::jinja
