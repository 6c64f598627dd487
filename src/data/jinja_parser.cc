// Tokens to the AST with jinja2's grammar and precedence: `x if c else y` < or < and < not <
// comparisons (chained, `in`, `not in`) < + - < ~ < * / // % < ** < unary - + < postfix
// (.attr, [index], (call)) < filters and tests, which bind to the unary expression on their left.
#include <string>

#include "data/jinja_ast.h"
#include "data/jinja_lexer.h"

namespace zerotune::jinja {
namespace {

using Type = Token::Type;

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& origin, const Limits& limits)
      : tokens_(std::move(tokens)), origin_(origin), limits_(limits) {}

  Body parse_template() {
    Body body = subparse({});
    return body;
  }

 private:
  // ---- the token stream ----
  const Token& current() const { return tokens_[index_]; }
  const Token& look() const { return tokens_[std::min(index_ + 1, tokens_.size() - 1)]; }
  const Token& advance() {
    const Token& token = tokens_[index_];
    if (index_ + 1 < tokens_.size()) ++index_;
    return token;
  }
  bool is_op(std::string_view op) const {
    return current().type == Type::op && current().text == op;
  }
  bool is_name(std::string_view name) const {
    return current().type == Type::name && current().text == name;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& token) {
    switch (token.type) {
      case Type::eof:
        return "end of template";
      case Type::block_begin:
        return "begin of statement block";
      case Type::block_end:
        return "end of statement block";
      case Type::variable_begin:
        return "begin of print statement";
      case Type::variable_end:
        return "end of print statement";
      case Type::data:
        return "template data / text";
      case Type::string:
        return "string";
      case Type::integer:
        return "integer";
      case Type::floating:
        return "float";
      default:
        return token.text;
    }
  }

  [[noreturn]] void fail(const std::string& message, int line) const {
    throw TemplateError(origin_ + ":" + std::to_string(line) + ": " + message);
  }
  [[noreturn]] void fail_unexpected(const std::string& expected) const {
    if (current().type == Type::eof)
      fail("unexpected end of template, expected " + expected + ".", current().line);
    fail("expected " + expected + ", got '" + describe(current()) + "'", current().line);
  }
  const Token& expect_op(std::string_view op) {
    if (!is_op(op)) fail_unexpected("token '" + std::string(op) + "'");
    return advance();
  }
  const Token& expect_name() {
    if (current().type != Type::name) fail_unexpected("token 'name'");
    return advance();
  }
  void expect_name(std::string_view name) {
    if (!is_name(name)) fail_unexpected("token '" + std::string(name) + "'");
    advance();
  }
  void expect(Type type, const char* what) {
    if (current().type != type) fail_unexpected(what);
    advance();
  }

  // Nesting guard for the recursive descent: source from a file must not overflow the stack.
  struct Depth {
    Depth(Parser& p) : parser(p) {
      if (++parser.depth_ > parser.limits_.max_nesting) {
        parser.fail("nesting deeper than " + std::to_string(parser.limits_.max_nesting) + " levels",
                    parser.current().line);
      }
    }
    ~Depth() { --parser.depth_; }
    Parser& parser;
  };

  static ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  static NodePtr make_node(Node::Kind kind, int line) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = line;
    return n;
  }

  // ---- statements ----
  // Template data and tags until one of `end_tags` opens a block (left current, not consumed).
  Body subparse(const std::vector<std::string>& end_tags) {
    Depth depth(*this);
    Body body;
    while (current().type != Type::eof) {
      const Token& token = current();
      if (token.type == Type::data) {
        auto node = make_node(Node::Kind::text, token.line);
        node->text = token.text;
        body.push_back(std::move(node));
        advance();
      } else if (token.type == Type::variable_begin) {
        advance();
        auto node = make_node(Node::Kind::output, token.line);
        node->expr = parse_tuple(true, {}, false);
        body.push_back(std::move(node));
        expect(Type::variable_end, "end of print statement");
      } else if (token.type == Type::block_begin) {
        advance();
        if (current().type == Type::name) {
          for (const std::string& tag : end_tags) {
            if (current().text == tag) return body;
          }
        }
        parse_statement(body, end_tags);
        expect(Type::block_end, "end of statement block");
      } else {
        fail("unexpected '" + describe(token) + "'", token.line);
      }
    }
    return body;
  }

  Body parse_statements(const std::vector<std::string>& end_tags, bool drop_needle) {
    skip_op(":");
    expect(Type::block_end, "end of statement block");
    Body body = subparse(end_tags);
    if (current().type == Type::eof) {
      std::string wanted;
      for (const std::string& tag : end_tags)
        wanted += (wanted.empty() ? "'" : " or '") + tag + "'";
      fail("Unexpected end of template. Jinja was looking for the following tags: " + wanted + ".",
           current().line);
    }
    if (drop_needle) advance();
    return body;
  }

  void parse_statement(Body& body, const std::vector<std::string>& end_tags) {
    if (current().type != Type::name) fail("tag name expected", current().line);
    const std::string tag = current().text;
    const int line = current().line;
    if (tag == "for") return body.push_back(parse_for());
    if (tag == "if") return body.push_back(parse_if());
    if (tag == "set") return body.push_back(parse_set());
    if (tag == "macro") return body.push_back(parse_macro());
    if (tag == "call") return body.push_back(parse_call_block());
    if (tag == "filter") return body.push_back(parse_filter_block());
    if (tag == "with") return body.push_back(parse_with());
    if (tag == "print") return parse_print(body);
    if (tag == "break" || tag == "continue") {
      advance();
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop", line);
      return body.push_back(
          make_node(tag == "break" ? Node::Kind::break_ : Node::Kind::continue_, line));
    }
    if (tag == "generation") {
      advance();
      auto node = make_node(Node::Kind::scope, line);
      node->body = parse_statements({"endgeneration"}, true);
      return body.push_back(std::move(node));
    }
    if (tag == "block" || tag == "extends" || tag == "include" || tag == "import" ||
        tag == "from" || tag == "autoescape") {
      fail("the '" + tag +
               "' tag needs other templates or autoescaping, which chat templates do not have",
           line);
    }
    std::string message = "Encountered unknown tag '" + tag + "'.";
    if (!end_tags.empty()) {
      message += " Jinja was looking for the following tags: '" + end_tags[0] + "'";
      for (size_t i = 1; i < end_tags.size(); ++i) message += " or '" + end_tags[i] + "'";
      message += ".";
    }
    fail(message, line);
  }

  NodePtr parse_for() {
    auto node = make_node(Node::Kind::for_, advance().line);
    node->target = parse_assign_target({"in"}, false);
    expect_name("in");
    node->expr = parse_tuple(false, {"recursive"}, false);
    if (skip_name("if")) node->condition = parse_expression(true);
    if (is_name("recursive")) fail("recursive loops are not supported", current().line);
    ++loop_depth_;
    node->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (advance().text == "else") node->else_body = parse_statements({"endfor"}, true);
    return node;
  }

  NodePtr parse_if() {
    auto node = make_node(Node::Kind::if_, advance().line);
    while (true) {
      ExprPtr test = parse_tuple(false, {}, false);
      Body body = parse_statements({"elif", "else", "endif"}, false);
      node->branches.emplace_back(std::move(test), std::move(body));
      const Token& token = advance();
      if (token.text == "elif") continue;
      if (token.text == "else") node->else_body = parse_statements({"endif"}, true);
      break;
    }
    return node;
  }

  NodePtr parse_set() {
    const int line = advance().line;
    Target target = parse_assign_target({}, true);
    if (skip_op("=")) {
      auto node = make_node(Node::Kind::set, line);
      node->target = std::move(target);
      node->expr = parse_tuple(true, {}, false);
      return node;
    }
    auto node = make_node(Node::Kind::set_block, line);
    node->target = std::move(target);
    if (is_op("|")) node->filter = parse_filter(nullptr, false);
    node->body = parse_statements({"endset"}, true);
    return node;
  }

  void parse_signature(Node& node) {
    expect_op("(");
    while (!is_op(")")) {
      if (!node.params.empty()) expect_op(",");
      const Token& name = expect_name();
      check_assignable(name.text, name.line);
      node.params.push_back(name.text);
      if (skip_op("=")) {
        node.defaults.push_back(parse_expression(true));
      } else if (!node.defaults.empty()) {
        fail("non-default argument follows default argument", name.line);
      }
    }
    expect_op(")");
  }

  NodePtr parse_macro() {
    auto node = make_node(Node::Kind::macro, advance().line);
    const Token& name = expect_name();
    check_assignable(name.text, name.line);
    node->text = name.text;
    parse_signature(*node);
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;  // a loop around the macro is not a loop inside it
    node->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved_loops;
    return node;
  }

  NodePtr parse_call_block() {
    auto node = make_node(Node::Kind::call_block, advance().line);
    if (is_op("(")) parse_signature(*node);
    node->expr = parse_expression(true);
    if (node->expr->kind != Expr::Kind::call) fail("expected call", node->line);
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    node->body = parse_statements({"endcall"}, true);
    loop_depth_ = saved_loops;
    return node;
  }

  NodePtr parse_filter_block() {
    auto node = make_node(Node::Kind::filter_block, advance().line);
    node->filter = parse_filter(nullptr, true);
    node->body = parse_statements({"endfilter"}, true);
    return node;
  }

  NodePtr parse_with() {
    auto node = make_node(Node::Kind::with, advance().line);
    while (current().type != Type::block_end) {
      if (!node->assignments.empty()) expect_op(",");
      Target target = parse_assign_target({}, false);
      expect_op("=");
      node->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    node->body = parse_statements({"endwith"}, true);
    return node;
  }

  void parse_print(Body& body) {
    const int line = advance().line;
    bool first = true;
    while (current().type != Type::block_end) {
      if (!first) expect_op(",");
      first = false;
      auto node = make_node(Node::Kind::output, line);
      node->expr = parse_expression(true);
      body.push_back(std::move(node));
    }
  }

  void check_assignable(const std::string& name, int line) const {
    static const char* const kConstants[] = {"true", "false", "none", "True", "False", "None"};
    for (const char* c : kConstants) {
      if (name == c) fail("can't assign to 'const'", line);
    }
  }

  Target to_target(const Expr& e) const {
    Target target;
    target.line = e.line;
    if (e.kind == Expr::Kind::name) {
      check_assignable(e.name, e.line);
      target.name = e.name;
      return target;
    }
    if (e.kind == Expr::Kind::tuple) {
      target.kind = Target::Kind::tuple;
      for (const ExprPtr& element : e.children) target.elements.push_back(to_target(*element));
      return target;
    }
    fail(e.kind == Expr::Kind::constant ? "can't assign to 'const'"
                                        : "can't assign to this expression",
         e.line);
  }

  Target parse_assign_target(const std::vector<std::string>& extra_end, bool with_namespace) {
    if (with_namespace && current().type == Type::name && look().type == Type::op &&
        look().text == ".") {
      Target target;
      target.kind = Target::Kind::namespace_attribute;
      target.line = current().line;
      target.name = advance().text;
      advance();  // the dot
      target.attribute = expect_name().text;
      return target;
    }
    ExprPtr e = parse_tuple_of_primaries(extra_end);
    return to_target(*e);
  }

  // ---- expressions ----
  bool is_tuple_end(const std::vector<std::string>& extra_end) const {
    const Type t = current().type;
    if (t == Type::variable_end || t == Type::block_end || is_op(")")) return true;
    for (const std::string& name : extra_end) {
      if (is_name(name)) return true;
    }
    return false;
  }

  // `a, b, c` as a tuple; one expression alone as itself.
  ExprPtr parse_tuple(bool with_condexpr, const std::vector<std::string>& extra_end,
                      bool explicit_parentheses) {
    const int line = current().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses)
        fail("Expected an expression, got '" + describe(current()) + "'", current().line);
    }
    auto tuple = make(Expr::Kind::tuple, line);
    tuple->children = std::move(items);
    return tuple;
  }

  ExprPtr parse_tuple_of_primaries(const std::vector<std::string>& extra_end) {
    const int line = current().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_primary());
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      fail("Expected an expression, got '" + describe(current()) + "'", current().line);
    }
    auto tuple = make(Expr::Kind::tuple, line);
    tuple->children = std::move(items);
    return tuple;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    Depth depth(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    const int line = current().line;
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      auto cond = make(Expr::Kind::condition, line);
      cond->children.push_back(parse_or());
      cond->children.push_back(std::move(expr));
      cond->children.push_back(skip_name("else") ? parse_condexpr() : nullptr);
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr parse_binary_chain(Expr::Kind kind, const char* word, ExprPtr (Parser::*operand)()) {
    const int line = current().line;
    ExprPtr left = (this->*operand)();
    while (skip_name(word)) {
      auto node = make(kind, line);
      node->children.push_back(std::move(left));
      node->children.push_back((this->*operand)());
      left = std::move(node);
    }
    return left;
  }
  ExprPtr parse_or() {
    return parse_binary_chain(Expr::Kind::logical_or, "or", &Parser::parse_and);
  }
  ExprPtr parse_and() {
    return parse_binary_chain(Expr::Kind::logical_and, "and", &Parser::parse_not);
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto node = make(Expr::Kind::logical_not, advance().line);
      Depth depth(*this);
      node->children.push_back(parse_not());
      return node;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = current().line;
    ExprPtr first = parse_math1();
    auto compare = make(Expr::Kind::compare, line);
    while (true) {
      static const char* const kOps[] = {"==", "!=", "<", "<=", ">", ">="};
      std::string op;
      for (const char* candidate : kOps) {
        if (is_op(candidate)) op = candidate;
      }
      if (!op.empty()) {
        advance();
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && look().type == Type::name && look().text == "in") {
        advance(), advance();
        op = "not in";
      } else {
        break;
      }
      compare->ops.push_back(op);
      compare->children.push_back(parse_math1());
    }
    if (compare->ops.empty()) return first;
    compare->children.insert(compare->children.begin(), std::move(first));
    return compare;
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
    auto node = make(Expr::Kind::binary, line);
    node->name = op;
    node->children.push_back(std::move(left));
    node->children.push_back(std::move(right));
    return node;
  }

  ExprPtr parse_math1() {
    int line = current().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = advance().text;
      left = binary(op, std::move(left), parse_concat(), line);
      line = current().line;
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = current().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto node = make(Expr::Kind::concat, line);
    node->children.push_back(std::move(first));
    while (skip_op("~")) node->children.push_back(parse_math2());
    return node;
  }

  ExprPtr parse_math2() {
    int line = current().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = advance().text;
      left = binary(op, std::move(left), parse_pow(), line);
      line = current().line;
    }
    return left;
  }

  ExprPtr parse_pow() {
    int line = current().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) {
      left = binary("**", std::move(left), parse_unary(true), line);
      line = current().line;
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Depth depth(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& token = advance();
      node = make(token.text == "-" ? Expr::Kind::negate : Expr::Kind::plus, token.line);
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& token = current();
    switch (token.type) {
      case Type::name: {
        advance();
        auto node = make(Expr::Kind::constant, token.line);
        if (token.text == "true" || token.text == "True") {
          node->constant = Value(true);
        } else if (token.text == "false" || token.text == "False") {
          node->constant = Value(false);
        } else if (token.text == "none" || token.text == "None") {
          node->constant = Value::none();
        } else {
          node->kind = Expr::Kind::name;
          node->name = token.text;
        }
        return node;
      }
      case Type::string: {
        auto node = make(Expr::Kind::constant, token.line);
        std::string joined;
        while (current().type == Type::string) joined += advance().text;  // adjacent literals
        node->constant = Value(std::move(joined));
        return node;
      }
      case Type::integer:
      case Type::floating: {
        advance();
        auto node = make(Expr::Kind::constant, token.line);
        node->constant = token.type == Type::integer ? Value(token.integer) : Value(token.floating);
        return node;
      }
      default:
        break;
    }
    if (is_op("(")) {
      advance();
      ExprPtr node = parse_tuple(true, {}, true);
      expect_op(")");
      return node;
    }
    if (is_op("[")) return parse_list();
    if (is_op("{")) return parse_dict();
    if (token.type == Type::eof) fail("unexpected end of template", token.line);
    fail("unexpected '" + describe(token) + "'", token.line);
  }

  ExprPtr parse_list() {
    auto node = make(Expr::Kind::list, advance().line);
    while (!is_op("]")) {
      if (!node->children.empty()) expect_op(",");
      if (is_op("]")) break;
      node->children.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
  }

  ExprPtr parse_dict() {
    auto node = make(Expr::Kind::dict, advance().line);
    while (!is_op("}")) {
      if (!node->children.empty()) expect_op(",");
      if (is_op("}")) break;
      node->children.push_back(parse_expression(true));
      expect_op(":");
      node->children.push_back(parse_expression(true));
    }
    expect_op("}");
    return node;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& token = advance();
    if (token.text == ".") {
      const Token& attribute = advance();
      if (attribute.type == Type::name) {
        auto e = make(Expr::Kind::getattr, token.line);
        e->name = attribute.text;
        e->children.push_back(std::move(node));
        return e;
      }
      if (attribute.type != Type::integer) fail("expected name or number", attribute.line);
      auto e = make(Expr::Kind::getitem, token.line);
      auto index = make(Expr::Kind::constant, attribute.line);
      index->constant = Value(attribute.integer);
      e->children.push_back(std::move(node));
      e->children.push_back(std::move(index));
      return e;
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = make(Expr::Kind::getitem, token.line);
    e->children.push_back(std::move(node));
    if (args.size() == 1) {
      e->children.push_back(std::move(args[0]));
    } else {
      auto tuple = make(Expr::Kind::tuple, token.line);
      tuple->children = std::move(args);
      e->children.push_back(std::move(tuple));
    }
    return e;
  }

  // An index or a slice start:stop:step, each part optional.
  ExprPtr parse_subscribed() {
    const int line = current().line;
    auto slice = make(Expr::Kind::slice, line);
    if (skip_op(":")) {
      slice->children.push_back(nullptr);
    } else {
      ExprPtr e = parse_expression(true);
      if (!skip_op(":")) return e;
      slice->children.push_back(std::move(e));
    }
    if (is_op(":") || is_op("]") || is_op(",")) {
      slice->children.push_back(nullptr);
    } else {
      slice->children.push_back(parse_expression(true));
    }
    if (skip_op(":") && !is_op("]") && !is_op(",")) {
      slice->children.push_back(parse_expression(true));
    } else {
      slice->children.push_back(nullptr);
    }
    return slice;
  }

  void parse_call_args(Expr& e) {
    const int line = expect_op("(").line;
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported", line);
      if (current().type == Type::name && look().type == Type::op && look().text == "=") {
        std::string key = advance().text;
        advance();
        e.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail("invalid syntax for function call expression", line);
        e.children.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = make(Expr::Kind::call, current().line);
    e->children.push_back(std::move(callee));
    parse_call_args(*e);
    return e;
  }

  std::string dotted_name() {
    std::string name = expect_name().text;
    while (skip_op(".")) name += "." + expect_name().text;
    return name;
  }

  // `| name(args)` repeated; `start_inline` when the first name has no pipe ({% filter %}).
  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) advance();
      start_inline = false;
      const int line = current().line;
      auto e = make(Expr::Kind::filter, line);
      e->name = dotted_name();
      if (!is_filter_name(e->name)) fail("No filter named '" + e->name + "'.", line);
      e->children.push_back(std::move(node));
      if (is_op("(")) parse_call_args(*e);
      node = std::move(e);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = advance().line;  // `is`
    const bool negated = skip_name("not");
    auto e = make(Expr::Kind::test, line);
    e->name = dotted_name();
    if (!is_test_name(e->name)) fail("No test named '" + e->name + "'.", line);
    e->children.push_back(std::move(node));
    const Type t = current().type;
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((t == Type::name || t == Type::string || t == Type::integer || t == Type::floating ||
                is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is", current().line);
      e->children.push_back(parse_postfix(parse_primary()));
    }
    if (!negated) return e;
    auto n = make(Expr::Kind::logical_not, line);
    n->children.push_back(std::move(e));
    return n;
  }

  std::vector<Token> tokens_;
  size_t index_ = 0;
  const std::string& origin_;
  const Limits& limits_;
  int64_t depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::shared_ptr<const Program> parse_program(std::string_view source, std::string origin,
                                             const Limits& limits) {
  auto program = std::make_shared<Program>();
  program->origin = std::move(origin);
  program->limits = limits;
  Parser parser(tokenize(source, program->origin, limits), program->origin, limits);
  program->body = parser.parse_template();
  return program;
}

}  // namespace zerotune::jinja
