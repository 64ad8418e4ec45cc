#!/usr/bin/env python3
"""Checks the source tree against the module graph of ARCHITECTURE.md.

The rules come from the ```architecture block of ARCHITECTURE.md:

    COMPONENT -> DEP DEP ...      COMPONENT may include and link DEP (and itself)
    COMPONENT -> *                COMPONENT may include and link anything
    <HEADER-PREFIX> in COMP ...   only these components include <HEADER-PREFIX...>

A component is a directory (`tracker/publish`) and the CMake targets named
after it (`flotilla_tracker_publish`, `flotilla_tracker_publish_*`); a file
or target belongs to the longest component that matches it. Test sources
(`*_test.cpp`, `*_test.h`) are not checked: they may use anything.

Fails, naming file, line and rule, on:
  - an `#include "x/..."` from one component into another it may not use;
  - an `#include <...>` of a confined library outside its components;
  - a `target_link_libraries` edge to a flotilla_* target of a component
    the linking component may not use;
  - an include or link cycle between components;
  - a source file that belongs to no component.

Known violations are listed, each with its reason, in the exceptions file
(default scripts/check-architecture.exceptions):

    FROM -> TO: why               an allowed edge (TO may be a <header-prefix>)
    unmapped DIR: why             files directly in DIR belong to no component yet
    cycle COMP COMP ...: why      a cycle among exactly these components

An exception that matches nothing is reported as unused (an error with
--strict). Exit status: 0 clean, 1 violations, 2 bad input.
"""

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

SOURCE_SUFFIXES = (".cpp", ".h", ".cc", ".hpp")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
TLL_RE = re.compile(r"\btarget_link_libraries\s*\(", re.IGNORECASE)
DEFINE_RE = re.compile(r"\badd_(?:library|executable)\s*\(", re.IGNORECASE)
FLOTILLA_TARGET_RE = re.compile(r"\bflotilla_[A-Za-z0-9_]+")
EXCLUDED_DIRS = {".git", "build"}


class InputError(Exception):
    pass


def is_test_source(path):
    name = os.path.basename(path)
    stem = os.path.splitext(name)[0]
    return stem.endswith("_test")


# ---------------------------------------------------------------- the rules


class Rules:
    """The component graph read from ARCHITECTURE.md."""

    def __init__(self):
        self.allowed = {}  # component -> set of components, or None for anything
        self.headers = []  # (prefix, set of components, line)
        self.lines = {}  # component -> line in ARCHITECTURE.md

    def component_of_path(self, path):
        """The longest component whose directory holds `path`, else None."""
        best = None
        for comp in self.allowed:
            if path.startswith(comp + "/") and (best is None or len(comp) > len(best)):
                best = comp
        return best

    def component_of_target(self, target):
        """The longest component whose target name prefixes `target`, else None."""
        best = None
        for comp in self.allowed:
            name = "flotilla_" + comp.replace("/", "_")
            if (target == name or target.startswith(name + "_")) and (
                best is None or len(comp) > len(best)
            ):
                best = comp
        return best

    def may_use(self, source, dep):
        if source == dep:
            return True
        deps = self.allowed.get(source, set())
        return deps is None or dep in deps

    def header_rule(self, header):
        """The confinement rule whose prefix starts `header`, else None."""
        for prefix, comps, line in self.headers:
            if header.startswith(prefix):
                return prefix, comps, line
        return None


def parse_rules(doc_path):
    try:
        with open(doc_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise InputError(f"{doc_path}: {e.strerror}")
    block = re.search(r"^```architecture\n(.*?)^```", text, re.S | re.M)
    if not block:
        raise InputError(f"{doc_path}: no ```architecture block")
    first_line = text[: block.start(1)].count("\n") + 1
    rules = Rules()
    header_lines = []
    for offset, raw in enumerate(block.group(1).splitlines()):
        lineno = first_line + offset
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("<"):
            parts = line.split()
            if len(parts) < 3 or parts[1] != "in":
                raise InputError(f"{doc_path}:{lineno}: expected '<HEADER-PREFIX> in COMPONENT...'")
            header_lines.append((parts[0][1:].rstrip(">"), parts[2:], lineno))
            continue
        if "->" not in line:
            raise InputError(f"{doc_path}:{lineno}: expected 'COMPONENT -> DEP...'")
        name, deps = (s.strip() for s in line.split("->", 1))
        if not re.fullmatch(r"[a-z0-9_]+(/[a-z0-9_]+)*", name):
            raise InputError(f"{doc_path}:{lineno}: bad component name '{name}'")
        if name in rules.allowed:
            raise InputError(f"{doc_path}:{lineno}: component '{name}' listed twice")
        dep_list = deps.split()
        rules.allowed[name] = None if dep_list == ["*"] else set(dep_list)
        rules.lines[name] = lineno
    for name, deps in rules.allowed.items():
        for dep in sorted(deps or ()):
            if dep not in rules.allowed:
                raise InputError(
                    f"{doc_path}:{rules.lines[name]}: '{name}' may use '{dep}', which is no component"
                )
    for prefix, comps, lineno in header_lines:
        for comp in comps:
            if comp not in rules.allowed:
                raise InputError(f"{doc_path}:{lineno}: '<{prefix}' names '{comp}', which is no component")
        rules.headers.append((prefix, set(comps), lineno))
    graph = {c: {d for d in (deps or ()) if d != c} for c, deps in rules.allowed.items() if deps is not None}
    for _, cycle in find_cycles(graph):
        raise InputError(f"{doc_path}: the allowed graph has a cycle: {' -> '.join(cycle + [cycle[0]])}")
    return rules


# ----------------------------------------------------------- the exceptions


class Exceptions:
    def __init__(self):
        self.edges = {}  # (from, to) -> line
        self.unmapped = {}  # dir -> line
        self.cycles = {}  # frozenset of components -> line
        self.used = set()

    def allows_edge(self, source, dep):
        key = (source, dep)
        if key in self.edges:
            self.used.add(("edge",) + key)
            return True
        return False

    def allows_unmapped(self, directory):
        if directory in self.unmapped:
            self.used.add(("unmapped", directory))
            return True
        return False

    def allows_cycle(self, members):
        key = frozenset(members)
        if key in self.cycles:
            self.used.add(("cycle", key))
            return True
        return False

    def unused(self, path):
        out = []
        for (a, b), line in self.edges.items():
            if ("edge", a, b) not in self.used:
                out.append((line, f"{path}:{line}: unused exception '{a} -> {b}'"))
        for d, line in self.unmapped.items():
            if ("unmapped", d) not in self.used:
                out.append((line, f"{path}:{line}: unused exception 'unmapped {d}'"))
        for members, line in self.cycles.items():
            if ("cycle", members) not in self.used:
                out.append((line, f"{path}:{line}: unused exception 'cycle {' '.join(sorted(members))}'"))
        return [m for _, m in sorted(out)]


def parse_exceptions(path):
    exc = Exceptions()
    if path is None or not os.path.exists(path):
        return exc
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            rule, sep, why = line.partition(":")
            if not sep or not why.strip():
                raise InputError(f"{path}:{lineno}: expected 'RULE: why' (every exception says why)")
            words = rule.split()
            if len(words) == 3 and words[1] == "->":
                exc.edges[(words[0], words[2].rstrip(">"))] = lineno
            elif len(words) == 2 and words[0] == "unmapped":
                exc.unmapped[words[1].rstrip("/")] = lineno
            elif len(words) >= 3 and words[0] == "cycle":
                exc.cycles[frozenset(words[1:])] = lineno
            else:
                raise InputError(
                    f"{path}:{lineno}: expected 'FROM -> TO: why', 'unmapped DIR: why' or 'cycle A B...: why'"
                )
    return exc


# ----------------------------------------------------------------- the tree


def tracked_files(root):
    """Files under version control, or every file when `root` is no checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], check=True, capture_output=True
        ).stdout.decode()
        files = [f for f in out.split("\0") if f]
        if files:
            return sorted(f for f in files if os.path.exists(os.path.join(root, f)))
    except (OSError, subprocess.CalledProcessError):
        pass
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS and not d.startswith("build")]
        for name in filenames:
            found.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(found)


def cmake_calls(text, opener):
    """(line, argument text) of each call that `opener` matches."""
    for m in opener.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "(":
                depth += 1
            elif text[i] == ")":
                depth -= 1
            i += 1
        body = re.sub(r"#[^\n]*", "", text[m.end() : i - 1])
        yield text[: m.start()].count("\n") + 1, body


def first_source(words, directory):
    """The path of the first source file in add_library/add_executable arguments."""
    for word in words:
        if not word.endswith(SOURCE_SUFFIXES) or "$<" in word:
            continue
        rooted = re.sub(r"^\$\{(PROJECT|CMAKE)_SOURCE_DIR\}/", "", word)
        if rooted != word:
            return os.path.normpath(rooted)
        word = re.sub(r"^\$\{CMAKE_CURRENT_SOURCE_DIR\}/", "", word)
        if "${" not in word and not os.path.isabs(word):
            return os.path.normpath(os.path.join(directory, word))
    return os.path.join(directory, "CMakeLists.txt")


class Checker:
    def __init__(self, root, rules, exceptions):
        self.root = root
        self.rules = rules
        self.exc = exceptions
        self.errors = []
        # component -> dep -> first evidence "file:line" (includes and links)
        self.edges = defaultdict(dict)

    def component_of_file(self, path):
        comp = self.rules.component_of_path(path)
        if comp:
            return comp
        directory = os.path.dirname(path) or "."
        if not self.exc.allows_unmapped(directory):
            self.errors.append(
                f"{path}: belongs to no component of ARCHITECTURE.md"
                f" (rule: every source file is in a component's directory)"
            )
        return directory  # a stand-in component: the file's directory

    def check_sources(self, files):
        for path in files:
            if not path.endswith(SOURCE_SUFFIXES) or is_test_source(path):
                continue
            source = self.component_of_file(path)
            with open(os.path.join(self.root, path), encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE_RE.match(line)
                    if m:
                        self.check_include(path, lineno, source, m.group(1), m.group(2))

    def check_include(self, path, lineno, source, kind, name):
        where = f"{path}:{lineno}"
        if kind == "<":
            rule = self.rules.header_rule(name)
            if rule and source not in rule[1] and self.rules.allowed.get(source, set()) is not None:
                if not self.exc.allows_edge(source, "<" + rule[0]):
                    self.errors.append(
                        f"{where}: includes <{name}>, which only {', '.join(sorted(rule[1]))} may"
                        f" (rule: ARCHITECTURE.md:{rule[2]} '<{rule[0]} in ...')"
                    )
            return
        target = name if "/" in name else os.path.join(os.path.dirname(path), name)
        dep = self.rules.component_of_path(target)
        if dep is None:
            directory = os.path.dirname(target)
            if os.path.exists(os.path.join(self.root, target)) and self.exc.allows_unmapped(directory):
                dep = directory
            else:
                return  # not a project header (generated, or a library's)
        self.edges[source].setdefault(dep, where + f' includes "{name}"')
        if not self.rules.may_use(source, dep) and not self.exc.allows_edge(source, dep):
            self.errors.append(f'{where}: {source} includes "{name}" of {dep}{self.rule_text(source)}')

    def rule_text(self, source):
        line = self.rules.lines.get(source)
        if line is None:
            return " (rule: a directory outside every component may use nothing)"
        deps = self.rules.allowed[source]
        allowed = " ".join(sorted(deps)) if deps else "nothing"
        return f" (rule: ARCHITECTURE.md:{line} '{source} -> {allowed}')"

    def check_cmake(self, files):
        lists = [f for f in files if os.path.basename(f) == "CMakeLists.txt" or f.endswith(".cmake")]
        defined = {}  # target -> its first source file, else its CMakeLists.txt's directory
        texts = {}
        for path in lists:
            with open(os.path.join(self.root, path), encoding="utf-8", errors="replace") as f:
                texts[path] = f.read()
            for _, body in cmake_calls(texts[path], DEFINE_RE):
                words = body.split()
                defined.setdefault(words[0], first_source(words[1:], os.path.dirname(path)))
        for path in lists:
            directory = os.path.dirname(path)
            for lineno, body in cmake_calls(texts[path], TLL_RE):
                words = body.split()
                if not words or "${" in words[0]:
                    continue
                source = self.component_of_target(words[0], defined, directory)
                for dep_target in FLOTILLA_TARGET_RE.findall(" ".join(words[1:])):
                    dep = self.component_of_target(dep_target, defined, None)
                    if dep is None:
                        continue
                    where = f"{path}:{lineno}"
                    self.edges[source].setdefault(dep, f"{where} links {dep_target}")
                    if not self.rules.may_use(source, dep) and not self.exc.allows_edge(source, dep):
                        self.errors.append(
                            f"{where}: {words[0]} ({source}) links {dep_target} of {dep}"
                            f"{self.rule_text(source)}"
                        )

    def component_of_target(self, target, defined, directory):
        """A flotilla_* target's component by name; any other by its first source."""
        comp = self.rules.component_of_target(target) if target.startswith("flotilla_") else None
        if comp:
            return comp
        where = defined.get(target, directory)
        if where is None:
            return None
        return self.rules.component_of_path(where) or os.path.dirname(where) or "."

    def check_cycles(self):
        graph = {a: {b for b in deps if b != a} for a, deps in self.edges.items()}
        for members, cycle in find_cycles(graph):
            if self.exc.allows_cycle(members):
                continue
            hops = [f"{a} -> {b} ({self.edges[a][b]})" for a, b in zip(cycle, cycle[1:] + cycle[:1])]
            self.errors.append(
                f"cycle among components {' '.join(sorted(members))}, for one: "
                + "; ".join(hops)
                + " (rule: no include or link cycles between components)"
            )


def find_cycles(graph):
    """(members, one cycle through them) per strongly connected component of size > 1."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                out.append((set(members), cycle_within(graph, set(members))))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def cycle_within(graph, members):
    """A simple cycle through the smallest member, staying inside `members`."""
    start = min(members)
    parent, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return list(reversed(path))
            if w in members and w not in parent:
                parent[w] = v
                queue.append(w)
    return sorted(members)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    parser.add_argument("--exceptions", help="default: ROOT/scripts/check-architecture.exceptions")
    parser.add_argument("--strict", action="store_true", help="unused exceptions are errors")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    exceptions_path = args.exceptions or os.path.join(root, "scripts", "check-architecture.exceptions")
    try:
        rules = parse_rules(os.path.join(root, "ARCHITECTURE.md"))
        exc = parse_exceptions(exceptions_path)
    except InputError as e:
        print(f"check-architecture: {e}", file=sys.stderr)
        return 2
    files = tracked_files(root)
    checker = Checker(root, rules, exc)
    checker.check_sources(files)
    checker.check_cmake(files)
    checker.check_cycles()
    unused = exc.unused(os.path.relpath(exceptions_path, root))
    for message in checker.errors:
        print(message)
    for message in unused:
        print(("" if args.strict else "warning: ") + message)
    failed = bool(checker.errors) or (args.strict and bool(unused))
    print(
        f"check-architecture: {len(checker.errors)} violation(s), {len(unused)} unused exception(s)"
        f" over {len(files)} files: {'FAILED' if failed else 'ok'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
