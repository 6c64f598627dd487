#include "data/jinja.h"

#include "data/jinja_ast.h"
#include "data/jinja_interpreter.h"

namespace zerotune::jinja {

Template Template::parse(std::string_view source, std::string origin, Limits limits) {
  return Template(parse_program(source, std::move(origin), limits));
}

std::string Template::render(const Variables& variables) const {
  return render(variables, std::time(nullptr));
}

std::string Template::render(const Variables& variables, std::time_t now) const {
  try {
    return Interpreter(*program_, variables, now).render();
  } catch (const Fault& f) {
    // Operations report their faults with a line; this catches any that escaped that.
    throw TemplateError(program_->origin + ": " + f.what());
  }
}

const std::string& Template::origin() const {
  return program_->origin;
}

}  // namespace zerotune::jinja
