"""The packages of dlrun are layers (README, Layout): each imports only from the layers below
it, counting imports inside functions and leaving out those under `if TYPE_CHECKING:`."""

from __future__ import annotations

import ast
from pathlib import Path

import dlrun

# Bottom to top; a package may import from those before it and from itself.
LAYERS = [
    ("errors", "version"),
    ("config",),
    ("outputs",),
    ("data",),
    ("models",),
    ("optim",),
    ("tasks",),
    ("diagnostics",),
    ("training",),
    ("builtins",),
    ("reporting",),
    ("recipe",),
    ("tools",),
    ("sweeps",),
    ("cli",),
    ("api", "__main__"),
]
ROOT = Path(dlrun.__file__).parent


def imports(path: Path) -> set[str]:
    """The dlrun packages and modules one file imports: dlrun.data.x -> data."""

    class Visitor(ast.NodeVisitor):
        def __init__(self) -> None:
            self.found: set[str] = set()

        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == (
                "TYPE_CHECKING"
            ):
                for statement in node.orelse:
                    self.visit(statement)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            self.found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level == 0 and node.module == "dlrun":
                self.found.update(f"dlrun.{alias.name}" for alias in node.names)
            elif node.level == 0 and node.module:
                self.found.add(node.module)

    visitor = Visitor()
    visitor.visit(ast.parse(path.read_text()))
    return {name.split(".")[1] for name in visitor.found if name.startswith("dlrun.")}


def test_every_package_imports_only_from_the_layers_below_it():
    rank = {name: level for level, names in enumerate(LAYERS) for name in names}
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the package itself: `import dlrun` reaches the API on first use
        own = parts[0]
        assert own in rank, f"{own} is in no layer: add it to LAYERS and to the README"
        for imported in imports(path) - {own}:
            if rank[imported] >= rank[own]:
                upward.append(f"{path.relative_to(ROOT)} imports dlrun.{imported}")
    assert not upward, upward
