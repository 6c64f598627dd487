#!/usr/bin/python3
"""Lists every host function in the C++/CUDA sources that is longer than the limit.

  check_function_length.py [--root src] [--limit 150]
  check_function_length.py --self-test

A function's length is the number of lines from the first line of its declaration (template
header and return type included, comments before it not) to its closing brace. Lambdas, local
classes and nested blocks count as part of the function that holds them. CUDA device kernels
(__global__ functions in .cu/.cuh files) are exempt: one kernel is one launch, and splitting it
costs registers. Prints `file:line: name is N lines (limit L)` for each function over the limit
and exits 1 if there is any; otherwise prints how many functions it measured.

The parser is a brace matcher, not a compiler: comments, string, character and raw-string
literals are blanked first (so braces inside them do not count), preprocessor lines are dropped,
and each `{` at namespace or class scope is classified by the declaration text before it
(namespace, class/struct/union, enum, initializer, or function body).
"""

import argparse
import os
import re
import sys
import tempfile

SOURCE_SUFFIXES = (".cc", ".cpp", ".h", ".hpp", ".cu", ".cuh")
DEVICE_SUFFIXES = (".cu", ".cuh")
IDENT_CHARS = re.compile(r"[A-Za-z0-9_]")
RAW_PREFIXES = ("R", "u8R", "uR", "UR", "LR")


# --- Blanking comments, literals and preprocessor lines ---------------------------------------

def _blank(text):
    """Spaces for every character but newlines (so line numbers and columns survive)."""
    return re.sub(r"[^\n]", " ", text)


def _raw_string_prefix(src, quote):
    """The raw-string prefix ending just before src[quote] (a `"`), or None."""
    for prefix in RAW_PREFIXES:
        start = quote - len(prefix)
        if start >= 0 and src[start:quote] == prefix:
            if start == 0 or not IDENT_CHARS.match(src[start - 1]):
                return prefix
    return None


def _is_digit_separator(src, i):
    """Whether the `'` at i separates digits (1'000'000) rather than opening a char literal."""
    j = i
    while j > 0 and (IDENT_CHARS.match(src[j - 1]) or src[j - 1] == "'"):
        j -= 1
    return j < i and src[j].isdigit()


def _skip_quoted(src, i, quote):
    """Index just past the literal opened by src[i] == quote (backslash escapes honoured)."""
    j = i + 1
    while j < len(src) and src[j] != quote and src[j] != "\n":
        j += 2 if src[j] == "\\" else 1
    return min(j + 1, len(src))


def strip_code(src):
    """src with comments and the contents of string/char literals blanked, and preprocessor
    directives (with their continuation lines) blanked; newlines are kept everywhere."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            end = src.find("\n", i)
            end = n if end < 0 else end
            out.append(_blank(src[i:end]))
            i = end
        elif src.startswith("/*", i):
            end = src.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(_blank(src[i:end]))
            i = end
        elif c == '"' and _raw_string_prefix(src, i):
            open_paren = src.find("(", i)
            delimiter = src[i + 1:open_paren]
            close = src.find(")" + delimiter + '"', open_paren)
            end = n if close < 0 else close + len(delimiter) + 2
            out.append('"' + _blank(src[i + 1:end - 1]) + '"')
            i = end
        elif c == '"' or (c == "'" and not _is_digit_separator(src, i)):
            end = _skip_quoted(src, i, c)
            out.append(c + _blank(src[i + 1:end - 1]) + c)
            i = end
        else:
            out.append(c)
            i += 1
    return _drop_preprocessor("".join(out))


def _drop_preprocessor(code):
    lines = code.split("\n")
    continued = False
    for k, line in enumerate(lines):
        if continued or line.lstrip().startswith("#"):
            continued = line.rstrip().endswith("\\")
            lines[k] = _blank(line)
    return "\n".join(lines)


# --- Classifying the declaration before a `{` --------------------------------------------------

ACCESS_LABEL = re.compile(r"^\s*(public|private|protected)\s*:(?!:)")
QUALIFIERS_TAIL = re.compile(
    r"^(\s|const\b|volatile\b|noexcept\b|override\b|final\b|mutable\b|constexpr\b|&)*"
    r"(->[^;{}]*)?$")
TEMPLATE_ARGS = r"(?:<(?:[^;{}()<>]|<[^;{}()<>]*>)*>)?"  # `<...>` right after a name
NAME_BEFORE_PARAMS = re.compile(
    r"((?:[A-Za-z_]\w*" + TEMPLATE_ARGS + r"\s*::\s*)*"
    r"(?:operator\s*\(\s*\)|operator\b[^;{}()]*|~?[A-Za-z_]\w*" + TEMPLATE_ARGS + r"))\s*$")


def _matching_open(text, close):
    """Index of the `(` that the `)` at text[close] closes, or -1."""
    depth = 0
    for k in range(close, -1, -1):
        if text[k] == ")":
            depth += 1
        elif text[k] == "(":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _top_level_close_parens(text):
    """Indices of every `)` that closes a parenthesis opened at depth 0 of text."""
    closes, depth = [], 0
    for k, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                closes.append(k)
    return closes


def _initializer_colon(header):
    """Index of a constructor's initializer-list colon (`) :` not `::`), or -1."""
    for close in _top_level_close_parens(header):
        m = re.match(r"\s*(noexcept\s*)?:(?!:)", header[close + 1:])
        if m:
            return close + m.end() - 1
    return -1


def _strip_template_header(h):
    """h without a leading `template <...>` (nested angle brackets allowed)."""
    m = re.match(r"template\s*<", h)
    if not m:
        return h
    depth = 0
    for k in range(m.end() - 1, len(h)):
        if h[k] == "<":
            depth += 1
        elif h[k] == ">":
            depth -= 1
            if depth == 0:
                return _strip_template_header(h[k + 1:].lstrip())
    return h


def classify(header):
    """What a `{` at namespace or class scope opens, from the declaration text before it:
    'scope' (namespace, extern "C", class body), 'function', 'init_brace' (a member initializer
    inside a constructor's initializer list) or 'data' (enum body, aggregate initializer)."""
    h = ACCESS_LABEL.sub("", header).strip()
    colon = _initializer_colon(h)
    if colon >= 0:
        tail = h[colon + 1:].rstrip()
        return "function" if tail == "" or tail.endswith((")", "}")) else "init_brace"
    declaration = _strip_template_header(h)
    if re.match(r"(inline\s+)?namespace\b", declaration) or re.fullmatch(r'extern\s*"\s*"', h):
        return "scope"
    if re.match(r"(typedef\s+)?enum\b", declaration):
        return "data"
    if re.match(r"(typedef\s+)?(class|struct|union)\b", declaration):
        return "scope"
    closes = _top_level_close_parens(h)
    if closes and QUALIFIERS_TAIL.match(h[closes[-1] + 1:]):
        return "function"  # also a lambda bound at namespace scope: `auto f = [](int x) {`
    if re.search(r"=\s*\[[^\]]*\]\s*(mutable\s*)?$", h):
        return "function"  # the same without a parameter list
    return "data"


def function_name(header):
    h = ACCESS_LABEL.sub("", header).strip()
    colon = _initializer_colon(h)
    if colon >= 0:
        h = h[:colon]
    closes = _top_level_close_parens(h)
    if not closes:  # `auto f = [] {` at namespace scope
        return "lambda" if re.search(r"\]\s*(mutable\s*)?$", h) else "?"
    params_close = closes[-1]
    # `operator()(...)`: the last parenthesis pair is the parameter list, the one before is the
    # operator's name; NAME_BEFORE_PARAMS knows the latter.
    open_paren = _matching_open(h, params_close)
    m = NAME_BEFORE_PARAMS.search(h[:open_paren])
    if m:
        return re.sub(r"\s*::\s*", "::", re.sub(r"\s+", " ", m.group(1)))
    if re.search(r"\[[^\]]*\]\s*$", h[:open_paren]):
        return "lambda"
    return "?"


# --- Finding function bodies -------------------------------------------------------------------

class Function:
    def __init__(self, name, first_line, last_line, header):
        self.name = name
        self.first_line = first_line
        self.last_line = last_line
        self.header = header

    @property
    def length(self):
        return self.last_line - self.first_line + 1


def _matching_brace(code, open_index):
    depth = 0
    for k in range(open_index, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(code) - 1  # unbalanced: the body runs to the end of the file


def find_functions(code):
    """Every function body in stripped code (see strip_code), outermost only."""
    line_of = _line_index(code)
    functions = []
    _scan_scope(code, 0, len(code), functions, line_of)
    return functions


def _line_index(code):
    starts = [0] + [m.end() for m in re.finditer("\n", code)]

    def line_of(offset):
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    return line_of


def _scan_scope(code, begin, end, functions, line_of):
    """Scans declarations in code[begin:end] (a namespace or class body)."""
    header_start, i = begin, begin
    while i < end:
        c = code[i]
        if c == ";":
            header_start = i + 1
        elif c == "}":  # the scope's own closing brace is outside [begin, end)
            header_start = i + 1
        elif c == "{":
            header = code[header_start:i]
            kind = classify(header)
            close = _matching_brace(code, i)
            if kind == "scope":
                _scan_scope(code, i + 1, close, functions, line_of)
                header_start = close + 1
            elif kind == "function":
                first = header_start + len(header) - len(ACCESS_LABEL.sub("", header).lstrip())
                functions.append(Function(function_name(header), line_of(first), line_of(close),
                                          header))
                header_start = close + 1
            # init_brace and data: the declaration goes on after the braces
            i = close
        i += 1


def is_device_kernel(path, function):
    return path.endswith(DEVICE_SUFFIXES) and re.search(r"\b__global__\b", function.header)


def long_functions(path, source, limit):
    """(function, measured count) for one file's text: functions over `limit` lines."""
    functions = [f for f in find_functions(strip_code(source)) if not is_device_kernel(path, f)]
    return [f for f in functions if f.length > limit], len(functions)


def check_tree(root, limit):
    findings, measured, files = [], 0, 0
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        for name in sorted(names):
            if not name.endswith(SOURCE_SUFFIXES):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                too_long, count = long_functions(path, f.read(), limit)
            files += 1
            measured += count
            findings += [(path, f) for f in too_long]
    return findings, measured, files


# --- Self-test ---------------------------------------------------------------------------------

def _function_of(lines, name="f", body_line="  x += 1;"):
    """A C++ function `name` exactly `lines` lines long (lines >= 2)."""
    return "\n".join([f"int {name}(int x) {{"] + [body_line] * (lines - 2) + ["}"]) + "\n"


def self_test():
    failures = []

    def expect(label, path, source, want):
        """want: list of (name, length) over the limit of 150, in order."""
        too_long, _ = long_functions(path, source, 150)
        got = [(f.name, f.length) for f in too_long]
        status = "PASS" if got == want else "FAIL"
        print(f"{status}  {label:<58} {got}")
        if got != want:
            failures.append(f"{label}: got {got}, want {want}")

    def expect_all(label, source, want):
        """want: every (name, first_line, length) found, whatever its length."""
        got = [(f.name, f.first_line, f.length) for f in find_functions(strip_code(source))]
        status = "PASS" if got == want else "FAIL"
        print(f"{status}  {label:<58} {got}")
        if got != want:
            failures.append(f"{label}: got {got}, want {want}")

    expect("150 lines pass", "a.cc", _function_of(150), [])
    expect("151 lines fail", "a.cc", _function_of(151), [("f", 151)])
    expect("two short functions are not one long one", "a.cc",
           _function_of(100, "f") + _function_of(100, "g"), [])
    # A naive matcher closes f at the `}` inside the literals (too short) or opens an extra
    # level at the `{` (f would swallow g); either way the 151 would not be found.
    for label, line in [
        ("'}' in a string", '  s = "}";'), ("'}' in a char", "  c = '}';"),
        ("'{' in a string", '  s = "{\\"{";'), ("'{' in a char", "  c = '{';"),
        ("'{' in a // comment", "  x += 1;  // {"), ("'}' in a /* */ comment", "  /* } */ x += 1;"),
        ("braces in a raw string", '  s = R"zz({ "}" )zz";'),
        ("digit separators", "  x += 1'000 + '{';"),
    ]:
        expect(f"{label}: 151 still fails", "a.cc",
               _function_of(151, "f", line) + _function_of(3, "g"), [("f", 151)])
        expect(f"{label}: 150 and a neighbour pass", "a.cc",
               _function_of(150, "f", line) + _function_of(150, "g"), [])
    multi_line_comment = "int f() {\n  /* {\n  {\n  */\n  return 1;\n}\n" + _function_of(150, "g")
    expect("'{' across a multi-line comment", "a.cc", multi_line_comment, [])
    macro = ("#define BLOCK(x) \\\n  do { \\\n    x; \\\n  } while (0)\n"
             "#define OPEN_NAMESPACE namespace n {\n#define CLOSE }\n")
    expect("braces in #define lines are not code", "a.cc", macro + _function_of(151), [("f", 151)])

    with_lambda = ("int f(int x) {\n  auto g = [&](int y) {\n" + "    y += 1;\n" * 145 +
              "    return y;\n  };\n  return g(x);\n}\n")
    expect("a lambda counts in its enclosing function", "a.cc", with_lambda, [("f", 151)])
    expect("and is not reported on its own", "a.cc",
           with_lambda.replace("    y += 1;\n", "", 1), [])

    nested = ("namespace a {\nnamespace {\nclass C : public B<int> {\n public:\n"
              "  C(int v) : v_{v}, w_(v), z_{std::max(v, 2)} {\n    v_ += 1;\n  }\n"
              "  int get() const noexcept { return v_; }\n"
              "  auto twice() const -> int {\n    return 2 * v_;\n  }\n"
              "  enum class E : int { one = 1, two };\n"
              "  int table_[2] = {1, 2};\n"
              " private:\n  int v_ = 0;\n};\n}  // namespace\n"
              "template <typename T>\nT C::operator()(T x) const {\n  return x;\n}\n"
              'extern "C" {\nint c_entry(void) {\n  return 0;\n}\n}\n'
              "static const int kArray[] = {\n  1,\n  2,\n};\n"
              "auto bound = [](int x) {\n  return x;\n};\n"
              "template <>\nfloat to<float>(int x) {\n  return x;\n}\n"
              "template <> int Outer<std::pair<int, int>>::~Outer() {\n  return 1;\n}\n"
              "struct D {\n  operator const C&() const { return c; }\n"
              "  bool operator==(const D&) const = default;\n"
              "  D& operator=(const D& o) {\n    return *this;\n  }\n};\n"
              "}  // namespace a\n")
    expect_all("names, first lines and lengths in classes and namespaces", nested, [
        ("C", 5, 3), ("get", 8, 1), ("twice", 9, 3), ("C::operator()", 18, 4),
        ("c_entry", 23, 3), ("lambda", 31, 3), ("to<float>", 34, 4),
        ("Outer<std::pair<int, int>>::~Outer", 38, 3), ("operator const C&", 42, 1),
        ("operator=", 44, 3)])

    kernel = "__global__ void k(float* x) {\n" + "  x[0] += 1;\n" * 200 + "}\n"
    expect("a __global__ kernel in .cu is exempt", "k.cu", kernel, [])
    expect("a __device__ function in .cuh is not", "k.cuh",
           kernel.replace("__global__", "__device__"), [("k", 202)])
    expect("a host function in .cu is not", "k.cu", kernel.replace("__global__ ", ""),
           [("k", 202)])

    # The command line: a tree with one long function exits 1 and names file and line.
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "sub"))
        with open(os.path.join(root, "sub", "long.cc"), "w") as f:
            f.write("// header\n\n" + _function_of(151, "too_long"))
        with open(os.path.join(root, "ok.h"), "w") as f:
            f.write(_function_of(150, "fits"))
        findings, measured, files = check_tree(root, 150)
        got = [(os.path.relpath(p, root), fn.first_line, fn.name, fn.length) for p, fn in findings]
        want = [(os.path.join("sub", "long.cc"), 3, "too_long", 151)]
        ok = got == want and measured == 2 and files == 2
        print(f"{'PASS' if ok else 'FAIL'}  {'a tree: file, line, name, length':<58} {got}")
        if not ok:
            failures.append(f"tree: got {got}, {measured} functions in {files} files")

    print(f"{'all' if not failures else len(failures)} self-test"
          f"{'s passed' if not failures else ' checks failed'}")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="src", help="folder to scan (default: src)")
    ap.add_argument("--limit", type=int, default=150, help="most lines a function may have")
    ap.add_argument("--self-test", action="store_true", help="check the parser on snippets")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not os.path.isdir(args.root):
        print(f"check_function_length: --root {args.root} is not a folder", file=sys.stderr)
        return 1
    findings, measured, files = check_tree(args.root, args.limit)
    # Paths as from the folder above the root (src/train/trainer.cc), wherever ctest runs.
    above_root = os.path.dirname(os.path.abspath(args.root))
    for path, f in findings:
        shown = os.path.relpath(path, above_root)
        print(f"{shown}:{f.first_line}: {f.name} is {f.length} lines (limit {args.limit})")
    print(f"{measured} functions in {files} files under {args.root}: "
          f"{len(findings)} over {args.limit} lines")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
