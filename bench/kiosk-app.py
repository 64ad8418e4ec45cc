#!/usr/bin/env python3
"""Writes the kiosk image's app (bench/delta-corpus): a Flask signage app.

Usage: kiosk-app.py DIR VERSION   (VERSION 1 or 2)

DIR gets a Python package (`signage/`, about 30 modules), Jinja templates,
a stylesheet, a JavaScript bundle, a settings file and a requirements list,
all generated from fixed seeds so that every build writes the same bytes.
Version 2 is what a routine release changes: five modules edited in a few
places each, one module added and one removed, a template and the stylesheet
touched, a dozen functions of the bundle rewritten, the version bumped.
Bytecode (__pycache__) is compiled by the caller, with the image's Python.
"""
import os
import random
import sys

WORDS = ("screen playlist slide schedule asset layout zone ticker weather feed clock "
         "brightness device fleet status report retry backoff window config manifest "
         "signature render cache frame overlay transition timeout refresh").split()
MODULES = ["app", "routes", "api", "auth", "playlist", "schedule", "assets", "render",
           "layout", "zones", "ticker", "weather", "feeds", "clock", "display",
           "brightness", "health", "metrics", "report", "config", "storage", "cache",
           "images", "fonts", "i18n", "errors", "tasks", "sync", "util", "cli"]
EDITED = ("routes", "playlist", "render", "feeds", "storage")


def name(rnd, n=3):
    return "_".join(rnd.sample(WORDS, n))


def module(seed, n_items):
    rnd = random.Random(seed)
    lines = [f'"""signage.{seed}: {" ".join(rnd.sample(WORDS, 6))}."""', "",
             "import json", "import logging", "import os", "import time", "",
             "from . import config", "", "log = logging.getLogger(__name__)", ""]
    for i in range(n_items):
        if rnd.random() < 0.3:
            cls = "".join(w.title() for w in rnd.sample(WORDS, 2))
            lines += [f"class {cls}{i}:", f'    """{" ".join(rnd.sample(WORDS, 8))}."""', "",
                      "    def __init__(self, " + ", ".join(rnd.sample(WORDS, 3)) + "):"]
            for w in rnd.sample(WORDS, rnd.randint(2, 5)):
                lines.append(f"        self.{w} = {w}")
            lines.append("")
            for m in range(rnd.randint(1, 4)):
                lines.append(f"    def {name(rnd, 2)}(self):")
                for _ in range(rnd.randint(2, 8)):
                    a, b, c = rnd.sample(WORDS, 3)
                    lines.append(f"        {a} = self.{b}.get({c!r}, {rnd.randint(0, 600)})")
                lines += [f"        return {rnd.choice(WORDS)}", ""]
            continue
        args = ", ".join(rnd.sample(WORDS, rnd.randint(1, 3)))
        lines += [f"def {name(rnd)}_{i}({args}):",
                  f'    """{" ".join(rnd.sample(WORDS, rnd.randint(5, 12)))}."""']
        for _ in range(rnd.randint(3, 14)):
            a, b, c = rnd.sample(WORDS, 3)
            kind = rnd.random()
            if kind < 0.5:
                lines.append(f"    {a} = {b}.get({c!r}, {rnd.randint(0, 4096)})")
            elif kind < 0.7:
                lines.append(f"    log.info({(a + ' %s ' + b)!r}, {c})")
            elif kind < 0.85:
                lines += [f"    if {a} is None:", f"        raise ValueError({(b + ' ' + c)!r})"]
            else:
                lines.append(f"    {a} = [x for x in {b} if x.{c}]")
        lines += [f"    return {rnd.choice(WORDS)}", ""]
    return lines


def edit(lines, seed, edits):
    """Replaces, inserts and deletes lines in `edits` places, as a bug fix does."""
    rnd = random.Random("edit-" + seed)
    simple = lambda line: " = " in line and ".get(" in line  # an assignment statement
    for _ in range(edits):
        at = rnd.randrange(12, len(lines) - 5)
        while not simple(lines[at]):
            at = (at + 1) % len(lines)
        indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
        lines[at] = lines[at].replace(".get(", ".setdefault(")
        lines.insert(at + 1, f"{indent}retries = {rnd.randint(1, 9)}  # see release notes")
        gone = next((k for k in range(at + 2, len(lines)) if simple(lines[k])), None)
        if gone is not None:
            del lines[gone]
    return lines


def template(seed, version):
    rnd = random.Random("tpl-" + seed)
    out = ['{% extends "base.html" %}', "{% block content %}"]
    for i in range(rnd.randint(20, 60)):
        w = rnd.sample(WORDS, 3)
        out.append(f'<div class="{w[0]}-{w[1]}" data-{w[2]}="{{{{ {w[0]}.{w[1]} }}}}">'
                   f'{{{{ _("{" ".join(rnd.sample(WORDS, 4))}") }}}}</div>')
    if version == 2 and seed == "playlist":
        out.insert(5, '<div class="playlist-next">{{ _("next slide in") }} {{ remaining }}</div>')
    return "\n".join(out + ["{% endblock %}", ""])


def stylesheet(version):
    rnd = random.Random("css")
    out = []
    for i in range(400):
        w = rnd.sample(WORDS, 2)
        props = [f"  margin: {rnd.randint(0, 24)}px;", f"  color: #{rnd.randrange(1 << 24):06x};",
                 f"  font-size: {rnd.randint(10, 64)}px;", f"  z-index: {rnd.randint(0, 9)};"]
        if version == 2 and i % 97 == 5:
            props.append("  transition: opacity 0.4s;")
        out += [f".{w[0]}-{w[1]}-{i} {{"] + rnd.sample(props, 3) + ["}"]
    return "\n".join(out) + "\n"


def bundle(version):
    """A minified JavaScript bundle: one line per function, as a bundler writes."""
    rnd = random.Random("js")
    rewritten = set(random.Random("js-v2").sample(range(600), 12)) if version == 2 else set()
    out = ["(()=>{\"use strict\";"]
    for i in range(600):
        r = random.Random(f"js-{i}-{version if i in rewritten else 1}")
        body = ";".join(f"{r.choice('abcdefgh')}={r.choice(WORDS)}.{r.choice(WORDS)}"
                        f"({r.randint(0, 999)})" for _ in range(r.randint(3, 12)))
        out.append(f"function {rnd.choice(WORDS)}{i}(a,b,c){{var d,e,f,g,h;{body};return a}}")
    out.append("})();")
    return "\n".join(out) + "\n"


def main():
    out, version = sys.argv[1], int(sys.argv[2])
    pkg = os.path.join(out, "signage")
    os.makedirs(pkg, exist_ok=True)
    for sub in ("templates", "static/css", "static/js"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    names = MODULES if version == 1 else [m for m in MODULES if m != "cli"] + ["announcements"]
    for i, m in enumerate(names):
        lines = module(m, 20 + (i * 7) % 45)
        if version == 2 and m in EDITED:
            lines = edit(lines, m, 4)
        with open(os.path.join(pkg, m + ".py"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(pkg, "__init__.py"), "w") as f:
        f.write(f'"""Signage player."""\n__version__ = "3.{version}.0"\n')
    for t in ("base", "playlist", "schedule", "status", "error", "zones"):
        with open(os.path.join(out, "templates", t + ".html"), "w") as f:
            f.write(template(t, version))
    with open(os.path.join(out, "static/css/site.css"), "w") as f:
        f.write(stylesheet(version))
    with open(os.path.join(out, "static/js/player.min.js"), "w") as f:
        f.write(bundle(version))
    with open(os.path.join(out, "settings.yaml"), "w") as f:
        f.write(f"version: 3.{version}.0\nlisten: 0.0.0.0:8080\nrefresh_s: 30\n"
                "fonts: /usr/share/fonts/truetype/dejavu\n")
    with open(os.path.join(out, "requirements.txt"), "w") as f:
        f.write("flask\nrequests\npillow\npyyaml\n")


if __name__ == "__main__":
    main()
