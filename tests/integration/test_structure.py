"""The package's shape, checked: one base error, small modules, no import cycle, the relay alone,
Pi-only code imported lazily (python-zeroconf's test_circular_imports, gpiozero's exc.py)."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import appliance
from appliance.errors import ApplianceError

ROOT = Path(appliance.__file__).parent
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages([str(ROOT)], "appliance.")
    if not m.name.endswith("__main__")
)
#: What the relay must never pull in (it runs on a public host without the media stack).
BOX_ONLY = ("aiortc", "aioice", "av", "numpy", "gpiozero", "zeroconf", "picamera2", "lgpio")


def test_every_exception_the_appliance_defines_is_an_appliance_error() -> None:
    strays = []
    for name in MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not issubclass(value, ApplianceError)
            ):
                strays.append(f"{name}.{value.__name__}")
    assert strays == []


def test_no_module_is_over_450_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert long == {}


#: The longest a function or method may be, from its ``def`` to the last line of its body.
FUNCTION_LINES = 80


def _functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    """Every function and method in ``tree`` as (qualified name, lines from def to body end)."""
    found: list[tuple[str, int]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            found += _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            found.append((prefix + node.name, node.end_lineno - node.lineno + 1))
            found += _functions(node, f"{prefix}{node.name}.")
        else:
            found += _functions(node, prefix)
    return found


def _long_functions() -> dict[str, int]:
    return {
        f"{path.relative_to(ROOT).as_posix()}::{name}": lines
        for path in sorted(ROOT.rglob("*.py"))
        for name, lines in _functions(ast.parse(path.read_text(), str(path)))
        if lines > FUNCTION_LINES
    }


def test_no_function_is_over_80_lines() -> None:
    """Route tables and builders split by concern (issue 15): no function or method in the
    package is longer than FUNCTION_LINES, but those listed to be split (none may be added)."""
    long = _long_functions()
    assert set(long) == set(), long


def test_the_function_length_rule_counts_from_def_to_the_body_s_end() -> None:
    source = "class A:\n    @staticmethod\n    def f():\n" + "        x = 1\n" * 80
    source += "def g():\n    def inner():\n        pass\n    return inner\n"
    assert dict(_functions(ast.parse(source))) == {"A.f": 81, "g": 4, "g.inner": 2}


def test_the_architecture_doc_names_every_module() -> None:
    """docs/architecture.md names each module of the package: its path from ``appliance/``
    (``stream/fanout.py``), or its package folder and its file name in one row (``relay/`` ...
    ``rooms.py``); ``__init__.py`` and ``__main__.py`` go with their package."""
    doc = (ROOT.parent / "docs" / "architecture.md").read_text()
    rows = doc.splitlines()
    missing = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if path.name == "__init__.py" or (path.name == "__main__.py" and path.parent != ROOT):
            continue
        named = f"`{relative.as_posix()}`" in doc or f"appliance/{relative.as_posix()}" in doc
        # or in one row: a package folder (``session/``) and the path below it (``seal/wire.py``)
        in_row = any(
            f"`{folder.as_posix()}/" in row
            and f"`{relative.relative_to(folder).as_posix()}`" in row
            for folder in relative.parents[:-1]
            for row in rows
        )
        if not (named or in_row):
            missing.append(relative.as_posix())
    assert missing == []


def _fresh_imports(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_each_module_imports_first_without_a_cycle_and_pi_code_stays_lazy() -> None:
    """Each module imported as the first of the package (a cycle fails there), and none of them
    loads picamera2 or lgpio (which exist only on a Pi)."""
    code = f"""
import importlib, json, sys
failed = {{}}
for name in {MODULES!r}:
    for loaded in [m for m in sys.modules if m == "appliance" or m.startswith("appliance.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps({{"failed": failed, "pi": [m for m in ("picamera2", "lgpio") if m in sys.modules]}}))
"""
    result = _fresh_imports(code)
    assert result == {"failed": {}, "pi": []}


def test_the_relay_loads_nothing_of_the_box() -> None:
    code = f"""
import json, sys
import appliance.relay.__main__, appliance.relay.server, appliance.relay.app
print(json.dumps({{"loaded": [m for m in {BOX_ONLY!r} if m in sys.modules],
                  "box": sorted(m for m in sys.modules if m.startswith(("appliance.web",
                  "appliance.core", "appliance.stream", "appliance.capture", "appliance.encode",
                  "appliance.signalling", "appliance.box")))}}))
"""
    assert _fresh_imports(code) == {"loaded": [], "box": []}


def _requirements(dist: str, extras: tuple[str, ...] = ()) -> set[str]:
    """The distribution names ``dist`` (with ``extras``) needs, transitively, as installed."""
    wanted: set[str] = set()
    todo = [(dist, extras)]
    while todo:
        name, chosen = todo.pop()
        for line in importlib.metadata.requires(name) or []:
            requirement, _, marker = line.partition(";")
            dep = re.split(r"[ <>=!~\[(]", requirement.strip(), maxsplit=1)[0].lower()
            extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
            if extra and extra.group(1) not in chosen:
                continue
            if "platform" in marker and "linux" not in marker:
                continue
            if dep not in wanted:
                wanted.add(dep)
                try:
                    importlib.metadata.distribution(dep)
                except importlib.metadata.PackageNotFoundError:
                    continue
                todo.append((dep, ()))
    return wanted


def test_pip_install_relay_brings_nothing_of_the_media_stack() -> None:
    relay = _requirements("appliance", ("relay",))
    assert {"flask", "cheroot", "aiohttp"} <= relay
    assert not relay & {"aiortc", "aioice", "av", "numpy", "gpiozero", "zeroconf", "pillow"}
    box = _requirements("appliance", ("box",))
    assert {"aiortc", "av", "numpy", "gpiozero"} <= box, "the box's extra brings its stack"
