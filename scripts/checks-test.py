#!/usr/bin/env python3
"""Tests of the tree's own checks.

scripts/check-architecture.py: on a copy of the real tree and on small trees
of their own, a planted forbidden include, link, library header, cycle or
stray file makes the check fail naming the file, line and rule; the clean
copy passes. scripts/check-format.sh: a file clang-format would change fails
the gate, naming it; formatted files pass."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CHECKER = os.path.join(HERE, "check-architecture.py")
FORMAT_GATE = os.path.join(HERE, "check-format.sh")


def run_checker(root, *args):
    proc = subprocess.run(
        [sys.executable, CHECKER, "--root", root, *args], capture_output=True, text=True
    )
    return proc.returncode, proc.stdout + proc.stderr


def write(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(textwrap.dedent(text))


def append(root, path, text):
    """Appends to a new copy of the file: trees may share files by hard links."""
    full = os.path.join(root, path)
    with open(full) as f:
        old = f.read()
    os.unlink(full)
    with open(full, "w") as f:
        f.write(old + text)


def line_of(root, path, needle):
    with open(os.path.join(root, path)) as f:
        for number, line in enumerate(f, 1):
            if needle in line:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


def copy_repository(dest):
    """The repository's tracked files (or its files, outside a checkout) under dest."""
    try:
        out = subprocess.run(
            ["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], check=True, capture_output=True
        ).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        shutil.copytree(REPO, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git", "build*"))
        return
    for rel in files:
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


class RealTreeTest(unittest.TestCase):
    """The real tree, copied: clean, then with one planted violation at a time."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="check-architecture-")
        cls.pristine = os.path.join(cls.tmp, "pristine")
        copy_repository(cls.pristine)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def setUp(self):
        self.root = os.path.join(self.tmp, self.id().rsplit(".", 1)[-1])
        shutil.copytree(self.pristine, self.root, copy_function=os.link)

    def test_clean_copy_passes(self):
        code, out = run_checker(self.root)
        self.assertEqual(code, 0, out)
        self.assertIn("0 violation(s)", out)

    def test_planted_include_fails_naming_file_line_and_rule(self):
        write(self.root, "core/planted.cpp", """\
            #include "core/status.h"

            #include "runtime/runtime.h"
            """)
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn('core/planted.cpp:3: core includes "runtime/runtime.h" of runtime', out)
        self.assertIn("(rule: ARCHITECTURE.md:", out)
        self.assertIn("'core -> nothing'", out)
        self.assertNotIn("core/planted.cpp:1:", out)  # core may include itself

    def test_planted_link_fails_naming_file_line_and_rule(self):
        append(self.root, "core/CMakeLists.txt",
               "\ntarget_link_libraries(flotilla_core\n  PUBLIC flotilla_layerstore)\n")
        line = line_of(self.root, "core/CMakeLists.txt", "target_link_libraries(flotilla_core\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn(
            f"core/CMakeLists.txt:{line}: flotilla_core (core) links flotilla_layerstore of layerstore",
            out)
        self.assertIn("'core -> nothing'", out)
        # core -> layerstore and the layerstore -> core links form a cycle.
        self.assertIn("cycle among components core layerstore", out)

    def test_planted_library_header_fails(self):
        write(self.root, "metadata/planted.cpp", "#include <sqlite3.h>\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn("metadata/planted.cpp:1: includes <sqlite3.h>, which only core may", out)

    def test_file_outside_every_component_fails(self):
        write(self.root, "stray/thing.cpp", "int x;\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn("stray/thing.cpp: belongs to no component of ARCHITECTURE.md", out)

    def test_unit_tests_may_include_anything(self):
        write(self.root, "core/planted_test.cpp", '#include "sim/topology.h"\n')
        code, out = run_checker(self.root)
        self.assertEqual(code, 0, out)


ARCHITECTURE = """\
    # a test tree

    ```architecture
    a   ->
    b   -> a
    c   -> a b
    d   ->
    tests -> *

    <zlib.h> in b
    ```
    """


class SmallTreeTest(unittest.TestCase):
    """A tree of three components a <- b <- c, to pin down each rule."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="check-architecture-small-")
        write(self.root, "ARCHITECTURE.md", ARCHITECTURE)
        write(self.root, "a/x.h", "#pragma once\n")
        write(self.root, "b/y.h", '#pragma once\n#include "a/x.h"\n#include <zlib.h>\n')
        write(self.root, "c/z.cpp", '#include "b/y.h"\n#include "a/x.h"\n')
        write(self.root, "d/v.h", "#pragma once\n")
        write(self.root, "CMakeLists.txt", textwrap.dedent("""\
            add_library(flotilla_a a/x.cpp)
            add_library(flotilla_b b/y.cpp)
            target_link_libraries(flotilla_b PUBLIC flotilla_a)
            add_executable(tool c/z.cpp)
            target_link_libraries(tool PRIVATE flotilla_b $<TARGET_NAME_IF_EXISTS:flotilla_a>)
            """))

    def tearDown(self):
        shutil.rmtree(self.root)

    def exceptions(self, text):
        write(self.root, "scripts/check-architecture.exceptions", text)

    def test_clean_tree_passes(self):
        code, out = run_checker(self.root)
        self.assertEqual(code, 0, out)

    def test_executable_belongs_to_its_first_source(self):
        append(self.root, "CMakeLists.txt", "add_executable(atool a/main.cpp)\n"
                                            "target_link_libraries(atool PRIVATE flotilla_b)\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn("CMakeLists.txt:7: atool (a) links flotilla_b of b", out)

    def test_include_cycle_fails_even_when_each_edge_is_excepted(self):
        write(self.root, "a/x.h", '#pragma once\n#include "b/y.h"\n')
        self.exceptions("a -> b: the test's reason\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn("cycle among components a b, for one: a -> b (a/x.h:2 includes \"b/y.h\");"
                      " b -> a (b/y.h:2 includes \"a/x.h\")", out)
        self.exceptions("a -> b: the test's reason\ncycle a b: the test's reason\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 0, out)

    def test_exception_allows_an_edge_and_unused_ones_warn(self):
        write(self.root, "a/w.cpp", '#include "d/v.h"\n')
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn('a/w.cpp:1: a includes "d/v.h" of d', out)
        self.exceptions("# comment\na -> d: the test's reason\nb -> c: nothing does this\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 0, out)
        self.assertIn("warning: scripts/check-architecture.exceptions:3: unused exception 'b -> c'", out)
        code, out = run_checker(self.root, "--strict")
        self.assertEqual(code, 1, out)

    def test_confined_header_outside_its_components_fails(self):
        write(self.root, "c/zz.cpp", "#include <zlib.h>\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn("c/zz.cpp:1: includes <zlib.h>, which only b may", out)
        self.exceptions("c -> <zlib.h>: the test's reason\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 0, out)

    def test_unmapped_directory_can_be_excepted(self):
        write(self.root, "old/old.cpp", '#include "a/x.h"\n')
        code, out = run_checker(self.root)
        self.assertEqual(code, 1, out)
        self.assertIn("old/old.cpp: belongs to no component", out)
        self.assertIn('old/old.cpp:1: old includes "a/x.h" of a', out)
        self.exceptions("unmapped old: moving\nold -> a: moving\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 0, out)

    def test_exception_without_a_reason_is_refused(self):
        self.exceptions("a -> b\n")
        code, out = run_checker(self.root)
        self.assertEqual(code, 2, out)
        self.assertIn("every exception says why", out)

    def test_cycle_in_the_allowed_graph_is_refused(self):
        write(self.root, "ARCHITECTURE.md", ARCHITECTURE.replace("a   ->", "a   -> c"))
        code, out = run_checker(self.root)
        self.assertEqual(code, 2, out)
        self.assertIn("the allowed graph has a cycle: a -> c -> a", out)

    def test_unknown_component_in_a_rule_is_refused(self):
        write(self.root, "ARCHITECTURE.md", ARCHITECTURE.replace("b   -> a", "b   -> a e"))
        code, out = run_checker(self.root)
        self.assertEqual(code, 2, out)
        self.assertIn("'b' may use 'e', which is no component", out)


class FormatGateTest(unittest.TestCase):
    """scripts/check-format.sh on a tree outside any checkout."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="check-format-")
        shutil.copy(os.path.join(REPO, ".clang-format"), self.root)
        write(self.root, "a/good.cpp", "int Add(int a, int b) { return a + b; }\n")

    def tearDown(self):
        shutil.rmtree(self.root)

    def gate(self):
        proc = subprocess.run(["bash", FORMAT_GATE, self.root], capture_output=True, text=True)
        return proc.returncode, proc.stdout + proc.stderr

    def test_formatted_tree_passes(self):
        code, out = self.gate()
        self.assertEqual(code, 0, out)
        self.assertIn("1 files formatted", out)

    def test_misformatted_file_fails_naming_it(self):
        write(self.root, "b/bad.h", "int  Sub(int a,int b){return a-b;}\n")
        code, out = self.gate()
        self.assertEqual(code, 1, out)
        self.assertIn("b/bad.h:1:", out)
        self.assertNotIn("good.cpp:", out)


if __name__ == "__main__":
    unittest.main()
