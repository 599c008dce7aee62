"""Which files a `-k NAME` can select, decided from their source before anything is imported.

An item's name is `LABEL::...`: the file's label, then names its source defines (an example's `check*`,
`test` or `main` functions, module-level or imported objects; a test file's classes and `test*` methods)
with the arguments of a run (sizes, and the string literals main() passes). A file is imported only when
NAME is part of `LABEL::`, or each of NAME's words is part of the label, of one of those names or
literals, of `test`/`main` (the suffixes of harness and main() runs) or of `True`/`False`. So a file no
item of which can match (one that fails to import without another backend, say) reports nothing.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

SUFFIX_WORDS = ("test", "main")
ARGUMENT_WORDS = ("True", "False")  # (a bool parameter's run)


def label_of(root: Path, file: Path) -> str:
    """The file's name in outcomes: its path below the Helion checkout."""
    return file.relative_to(root).as_posix() if file.is_relative_to(root) else file.name


def item_words(kind: str, source: str) -> list[str]:
    """The names an example's ("example") or test file's ("test") item names are made of."""
    tree = ast.parse(source)
    if kind == "test":
        return [n.name for n in ast.walk(tree)
                if isinstance(n, ast.ClassDef) or (isinstance(n, ast.FunctionDef) and n.name.startswith("test"))]
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)
                 and (n.name.startswith("check") or n.name in SUFFIX_WORDS)]
    objects = [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]
    objects += [(a.asname or a.name).split(".")[0] for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names]
    main_literals = [c.value for f in functions if f.name == "main" for c in ast.walk(f)
                     if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value.isidentifier()]
    return [f.name for f in functions] + objects + main_literals


def may_match(kind: str, root: Path, file: Path, keyword: str | None) -> bool:
    """Whether an item of `file` can have a name containing `keyword` (True where its source can't be read)."""
    label = label_of(root, file)
    if keyword is None or keyword in f"{label}::":
        return True
    try:
        words = [label, *item_words(kind, file.read_text(encoding="utf-8")), *SUFFIX_WORDS, *ARGUMENT_WORDS]
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return True  # (the child reports what is wrong with the file)
    return all(any(piece in word for word in words) for piece in re.findall(r"[A-Za-z_]\w*", keyword))
