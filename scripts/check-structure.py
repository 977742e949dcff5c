#!/usr/bin/env python3
"""Structure checks of the Rust sources (project issue 11), plain Python 3, no dependencies.

1. Function length: every `fn` with a body in crates/*/src, outside `#[cfg(test)]` items (test
   modules, inline or in their own file), may span at most MAX_LINES lines, counted from the line
   of `fn` to the line of its closing brace. Longer ones fail the check, listed as
   `file:line name length`, unless scripts/structure-allow.txt names them (`path:function`, one
   a line, each with a `# why` comment).
2. Import circles: the `use crate::` / `use super::` / `use self::` imports (and `use child::`
   of a child declared with `mod`) of every library in crates/*/src, between modules (files)
   of the same crate. A module and
   its own submodules count as one piece (the parent declares and re-exports them, they use its
   items), so only imports between modules outside each other's line of descent are edges.
   Each circle is printed with the file:line of every import on it; circles are reported, they
   do not fail the check (pass --fail-on-circles to make them).

The sources are read by a small tokenizer (comments, strings, raw strings, char literals and
lifetimes are told apart), not by regular expressions on lines.

    python3 scripts/check-structure.py [--max-lines N] [--fail-on-circles]
"""

import os
import re
import sys

MAX_LINES = 120
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOW_FILE = os.path.join("scripts", "structure-allow.txt")

IDENT_START = re.compile(r"[A-Za-z_]")
IDENT = re.compile(r"[A-Za-z0-9_]*")
NUMBER = re.compile(r"[0-9][0-9A-Za-z_]*")


def tokens(text):
    """(kind, value, line) for identifiers ('id'), punctuation ('p') and literals ('lit')."""
    out, i, line, n = [], 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif c == '"':
            start = line
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                line += i < n and text[i] == "\n"
                i += 1
            out.append(("lit", "", start))
            i += 1
        elif c == "'":
            # 'x', '\n', '\u{1F600}' are characters; 'a (no closing quote after one char) a
            # lifetime or a label.
            if text.startswith("\\", i + 1):
                j = i + 3  # past the backslash and the escaped character
                while j < n and text[j] != "'":
                    j += 1
                out.append(("lit", "", line))
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                out.append(("lit", "", line))
                i += 3
            else:
                m = IDENT.match(text, i + 1)
                out.append(("life", m.group(0), line))
                i = m.end()
        elif IDENT_START.match(c):
            m = IDENT.match(text, i)
            word = m.group(0)
            j = m.end()
            # Raw strings r"..", r#".."#, br"..", cr".." (r#name is a raw identifier).
            if word in ("r", "br", "cr") and j < n and text[j] in '"#':
                k = j
                while k < n and text[k] == "#":
                    k += 1
                if k < n and text[k] == '"':
                    close = '"' + "#" * (k - j)
                    end = text.find(close, k + 1)
                    end = n if end < 0 else end + len(close)
                    out.append(("lit", "", line))
                    line += text.count("\n", k, end)
                    i = end
                    continue
                if word == "r":  # r#ident
                    m = IDENT.match(text, k)
                    out.append(("id", m.group(0), line))
                    i = m.end()
                    continue
            if word in ("b", "c") and j < n and text[j] in "\"'":
                i = j  # b"..", b'x', c"..": the literal follows
                continue
            out.append(("id", word, line))
            i = j
        elif c.isdigit():
            i = NUMBER.match(text, i).end()
            out.append(("lit", "", line))
        else:
            out.append(("p", c, line))
            i += 1
    return out


def matching_braces(toks):
    """Index of the closing token of every '{', '(' and '['."""
    pairs, stack = {}, []
    for k, (kind, v, _) in enumerate(toks):
        if kind != "p":
            continue
        if v in "{([":
            stack.append(k)
        elif v in "})]" and stack:
            pairs[stack.pop()] = k
    return pairs


def attribute_end(toks, k, pairs):
    """`#[..]` or `#![..]` at k: (index after it, its tokens), or None."""
    j = k + 1
    if j < len(toks) and toks[j][1] == "!":
        j += 1
    if j < len(toks) and toks[j][1] == "[" and j in pairs:
        return pairs[j] + 1, [t[1] for t in toks[j + 1 : pairs[j]]]
    return None


ITEM_KEYWORDS = {
    "fn", "mod", "impl", "struct", "enum", "union", "trait", "use", "const", "static", "type",
    "extern", "unsafe", "async", "pub", "macro_rules", "crate", "default",
}


def item_end(toks, k, pairs):
    """End (index after) of the item starting at k: its `{..}` block or its `;`. What is no
    item (a field, a statement, an argument) also ends at a `,`; nothing goes past the `}` of
    the block it is in."""
    item = toks[k][0] == "id" and toks[k][1] in ITEM_KEYWORDS
    while k < len(toks):
        v = toks[k][1] if toks[k][0] == "p" else None
        if v == ";" or (v == "," and not item):
            return k + 1
        if v in ("}", ")", "]"):
            return k
        if v in ("{", "(", "[") and k in pairs:
            if v == "{":
                return pairs[k] + 1
            k = pairs[k] + 1
            continue
        k += 1
    return k


class RustFile:
    """The functions, `mod` declarations and `use` imports of one file, test items left out."""

    def __init__(self, path):
        self.path = path
        with open(path, encoding="utf-8") as f:
            toks = tokens(f.read())
        self.functions = []  # (line, name, length)
        self.mods = []  # (name, line, is_test)
        self.uses = []  # (path words, line)
        pairs = matching_braces(toks)
        test_attr, k = False, 0
        while k < len(toks):
            kind, v, line = toks[k]
            if kind == "p" and v == "#":
                attr = attribute_end(toks, k, pairs)
                if attr:
                    k, words = attr
                    if words == ["cfg", "(", "test", ")"]:
                        test_attr = True
                    continue
            if test_attr:
                # The item the attribute is on (a test module, a test-only fn or impl).
                test_attr = False
                if kind == "id" and v == "mod" and k + 2 < len(toks) and toks[k + 2][1] == ";":
                    self.mods.append((toks[k + 1][1], line, True))
                k = item_end(toks, k, pairs)
                continue
            if kind == "id" and v == "fn" and k + 1 < len(toks) and toks[k + 1][0] == "id":
                end = item_end(toks, k, pairs)
                if toks[end - 1][1] == "}":
                    self.functions.append((line, toks[k + 1][1], toks[end - 1][2] - line + 1))
            elif kind == "id" and v == "mod" and k + 2 < len(toks) and toks[k + 1][0] == "id":
                if toks[k + 2][1] == ";":
                    self.mods.append((toks[k + 1][1], line, False))
            elif kind == "id" and v == "use" and (k == 0 or toks[k - 1][1] != "+"):
                end = k
                while end < len(toks) and toks[end][1] != ";":
                    end += 1
                end += 1
                for words in expand_use([t[1] for t in toks[k + 1 : end - 1]]):
                    self.uses.append((words, line))
                k = end
                continue
            k += 1


def expand_use(words):
    """`a::b::{c, d::{e as f, g}}` -> [[a, b, c], [a, b, d, e], [a, b, d, g]]."""
    paths, prefix, stack, current, alias = [], [], [], [], False
    for w in words:
        if w == "{":
            stack.append(prefix)
            prefix, current = prefix + current, []
        elif w in (",", "}"):
            if current:
                paths.append(prefix + current)
            current, alias = [], False
            if w == "}" and stack:
                prefix = stack.pop()
        elif w == "as":
            alias = True
        elif w != ":" and not alias:
            current.append(w)
    if current:
        paths.append(prefix + current)
    return paths


def child_dir(path, src):
    """Where the files of the modules a file declares with `mod x;` are."""
    base = os.path.basename(path)
    if base == "mod.rs" or path in (os.path.join(src, "lib.rs"), os.path.join(src, "main.rs")):
        return os.path.dirname(path)
    if os.path.dirname(path) == os.path.join(src, "bin"):
        return os.path.dirname(path)
    return path[: -len(".rs")]


def module_file(directory, name):
    for candidate in (os.path.join(directory, name + ".rs"), os.path.join(directory, name, "mod.rs")):
        if os.path.exists(candidate):
            return candidate
    return None


def crate_files(src):
    """Every file of the crate, parsed ({path: RustFile}), without the files of
    `#[cfg(test)] mod x;` modules."""
    parsed = {}
    for directory, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                path = os.path.join(directory, f)
                parsed[path] = RustFile(path)
    tests = set()
    for path, rust in parsed.items():
        for name, _, is_test in rust.mods:
            child = module_file(child_dir(path, src), name) if is_test else None
            if child:
                tests.add(child)
    # A test module's own submodules are test code too.
    todo = list(tests)
    while todo:
        path = todo.pop()
        for name, _, _ in parsed[path].mods if path in parsed else []:
            child = module_file(child_dir(path, src), name)
            if child and child not in tests:
                tests.add(child)
                todo.append(child)
    return {path: rust for path, rust in parsed.items() if path not in tests}


def library_modules(src, parsed):
    """The library's module tree from lib.rs: {module path tuple: file}."""
    modules, todo = {}, [((), os.path.join(src, "lib.rs"))]
    while todo:
        module, path = todo.pop()
        if path not in parsed or module in modules:
            continue
        modules[module] = path
        for name, _, is_test in parsed[path].mods:
            child = None if is_test else module_file(child_dir(path, src), name)
            if child:
                todo.append((module + (name,), child))
    return modules


def check_lengths(max_lines, allowed):
    too_long, seen = [], set()
    for crate in sorted(os.listdir("crates")):
        src = os.path.join("crates", crate, "src")
        if not os.path.isdir(src):
            continue
        parsed = crate_files(src)
        for path in sorted(parsed):
            for line, name, length in parsed[path].functions:
                if length <= max_lines:
                    continue
                key = f"{path}:{name}"
                if key in allowed:
                    seen.add(key)
                    print(f"allowed: {path}:{line} {name} {length} lines ({allowed[key]})")
                else:
                    too_long.append((path, line, name, length))
    for key in sorted(set(allowed) - seen):
        print(f"note: {ALLOW_FILE}: {key} is no longer over {max_lines} lines; remove it from the list")
    return too_long


def libraries():
    """The src folders of the workspace's libraries (crates/*/src with a lib.rs)."""
    return [
        os.path.join("crates", c, "src")
        for c in sorted(os.listdir("crates"))
        if os.path.exists(os.path.join("crates", c, "src", "lib.rs"))
    ]


def import_graph(src):
    """{module: {imported module: first line}} of one library, and the module files."""
    parsed = crate_files(src)
    modules = library_modules(src, parsed)
    graph = {}
    for module, path in modules.items():
        children = {name for name, _, test in parsed[path].mods if not test}
        edges = graph.setdefault(module, {})
        for words, line in parsed[path].uses:
            if words[0] == "crate":
                target, rest = (), words[1:]
            elif words[0] == "super":
                target, rest = module, words
                while rest and rest[0] == "super":
                    target, rest = target[:-1], rest[1:]
            elif words[0] == "self":
                target, rest = module, words[1:]
            elif words[0] in children:
                target, rest = module, words
            else:
                continue  # another crate, or std
            # The longest module prefix: `crate::a::b::Item` -> a::b when b is a module.
            for w in rest:
                if target + (w,) in modules:
                    target = target + (w,)
                else:
                    break
            # A module and its own submodules are one piece: the parent declares and
            # re-exports them, they use its items. Only imports across that line count.
            related = target[: len(module)] == module or module[: len(target)] == target
            if not related and target in modules:
                edges.setdefault(target, line)
    return graph, modules


def circles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def shortest_cycle(graph, component):
    """One circle through the component's first module, as a list of modules."""
    start, members = component[0], set(component)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph.get(path[-1], {})):
            if w == start:
                return path + [start]
            if w in members and w not in seen:
                seen.add(w)
                paths.append(path + [w])
    return [start]


def read_allow():
    allowed = {}
    if not os.path.exists(ALLOW_FILE):
        return allowed, []
    problems = []
    with open(ALLOW_FILE, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            entry, _, why = raw.partition("#")
            entry, why = entry.strip(), why.strip()
            if not entry:
                continue
            if ":" not in entry or not why:
                problems.append(f"{ALLOW_FILE}:{n}: expected 'path:function  # why', got {raw.strip()!r}")
                continue
            allowed[entry] = why
    return allowed, problems


def main():
    os.chdir(ROOT)
    max_lines, fail_on_circles, args = MAX_LINES, False, sys.argv[1:]
    while args:
        if args[0] == "--max-lines" and len(args) > 1 and args[1].isdigit():
            max_lines, args = int(args[1]), args[2:]
        elif args[0] == "--fail-on-circles":
            fail_on_circles, args = True, args[1:]
        else:
            print("usage: " + __doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
            return 2
    allowed, problems = read_allow()
    failed = bool(problems)
    for p in problems:
        print(p)

    too_long = check_lengths(max_lines, allowed)
    for path, line, name, length in too_long:
        print(f"{path}:{line} {name} {length} lines (at most {max_lines})")
    failed |= bool(too_long)

    found, module_count = [], 0
    for src in libraries():
        graph, modules = import_graph(src)
        module_count += len(modules)
        for component in circles(graph):
            found.append(component)
            cycle = shortest_cycle(graph, component)
            names = ["::".join(m) or "crate" for m in cycle]
            mark = "" if fail_on_circles else " (reported only)"
            print(f"import circle{mark} in {src}: {' -> '.join(names)}")
            for a, b in zip(cycle, cycle[1:]):
                print(f"  {modules[a]}:{graph[a][b]} uses {'::'.join(b) or 'crate'}")
    failed |= fail_on_circles and bool(found)

    print(
        f"check-structure: {'FAILED' if failed else 'ok'}: "
        f"{len(too_long)} function(s) over {max_lines} lines ({len(allowed)} allowed by "
        f"{ALLOW_FILE}), {len(found)} import circle(s) among {module_count} modules of "
        f"{len(libraries())} libraries in crates/"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
