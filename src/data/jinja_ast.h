// The parsed form of a template: expressions and statements as jinja2's parser builds them.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/jinja.h"

namespace zerotune::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind : uint8_t {
    constant,  // `constant`
    name,      // `name`
    list,      // children: elements
    tuple,     // children: elements
    dict,      // children: key0, value0, key1, value1, ...
    getattr,   // children[0].name
    getitem,   // children[0][children[1]]
    slice,     // children: start, stop, step (each may be null); only as a getitem index
    call,      // children[0](children[1:], kwargs)
    filter,    // children[0] | name(children[1:], kwargs); children[0] null in a filter block
    test,      // children[0] is name(children[1:], kwargs)
    negate,    // -children[0]
    plus,      // +children[0]
    logical_not,
    binary,  // children[0] `name` children[1]: + - * / // % **
    logical_and,
    logical_or,
    concat,     // children joined with ~
    compare,    // children[0] ops[0] children[1] ops[1] children[2] ...
    condition,  // children[1] if children[0] else children[2] (may be null)
  };
  Kind kind;
  int line;
  Value constant;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
};

// Where {% set %} and {% for %} store: a name, `ns.attr`, or a tuple of targets.
struct Target {
  enum class Kind : uint8_t { name, namespace_attribute, tuple };
  Kind kind = Kind::name;
  std::string name;
  std::string attribute;
  std::vector<Target> elements;
  int line = 0;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind : uint8_t {
    text,          // `text`
    output,        // {{ expr }}
    if_,           // branches, else_body
    for_,          // for target in expr [if condition] body [else else_body]
    set,           // target = expr
    set_block,     // {% set target [| filter] %}body{% endset %}
    macro,         // name(params = defaults) body
    call_block,    // {% call(params) expr %}body{% endcall %}
    filter_block,  // {% filter filter %}body{% endfilter %}
    with,          // assignments, body
    break_,
    continue_,
    scope,  // a body rendered in place ({% generation %})
  };
  Kind kind;
  int line;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  ExprPtr filter;  // a filter chain whose innermost operand is null
  Target target;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::pair<Target, ExprPtr>> assignments;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  Body else_body;
};

struct Program {
  std::string origin;
  Limits limits;
  Body body;
};

// Parses the tokens of `source`; throws TemplateError naming the origin and line.
std::shared_ptr<const Program> parse_program(std::string_view source, std::string origin,
                                             const Limits& limits);

// Whether the interpreter knows a filter or test of that name (checked when parsing, as jinja2
// checks when compiling).
bool is_filter_name(const std::string& name);
bool is_test_name(const std::string& name);

}  // namespace zerotune::jinja
