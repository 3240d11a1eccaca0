"""Run a chapter's definitions (imports, classes, functions, networks) in a test.

Tests check the models the reader sees, so they take them from the chapter
rather than from a copy. They read the per-framework notebook that the splitter
writes (``build/split/<framework>/<chapter>.ipynb``, made by ``make test`` and
``make notebooks``) with the standard library only, since the framework
environments do not carry jupytext.
"""
import ast
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The DCGAN chapter's network cells assign these (rngs: the JAX tab's keys).
NETWORK_NAMES = frozenset({"n_G", "n_D", "net_G", "net_D", "rngs"})
SPLIT_DIR = REPO_ROOT / "build" / "split"


def code_cells(framework, chapter):
    """The code cells' sources of one framework's split notebook, in order."""
    path = SPLIT_DIR / framework / f"{chapter}.ipynb"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `make build/split/.stamp` (or `make test`), "
            "which splits the chapters into per-framework notebooks")
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"]
            if cell["cell_type"] == "code"]


def is_definition(source, names):
    """True for a cell made only of imports, defs, classes, setup calls and
    assignments to ``names`` (so no data loading, printing or training)."""
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    body = ast.parse(source).body
    if not body:
        return False
    for node in body:
        if isinstance(node, allowed):
            continue
        if isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id in names for t in node.targets):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and any(isinstance(n, ast.Import | ast.ImportFrom) for n in body):
            continue  # e.g. npx.set_np() in the import cell
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and isinstance(node.value.func, ast.Attribute) \
                and node.value.func.attr == "add":
            continue  # Gluon's net.add(...) building a Sequential
        return False
    return True


def chapter_namespace(framework, chapter, names):
    """Execute the chapter's definition cells; return the resulting namespace."""
    namespace = {"__name__": f"chapter_{chapter}_{framework}"}
    for source in code_cells(framework, chapter):
        if is_definition(source, names):
            exec(compile(source, f"<{chapter}:{framework}>", "exec"), namespace)
    return namespace


def assigned_names(source):
    """The plain names the top-level statements of ``source`` assign (``a, b = ...`` included)."""
    targets = [target for node in ast.parse(source).body if isinstance(node, ast.Assign)
               for target in node.targets]
    return {name.id for target in targets
            for name in (target.elts if isinstance(target, ast.Tuple) else [target])
            if isinstance(name, ast.Name)}


def run_cell(framework, chapter, assigns, **variables):
    """Run the one code cell of the chapter that assigns every name in
    ``assigns``, after the chapter's imports, classes and functions, with
    ``variables`` set as the cells before it would; return the namespace."""
    found = [source for source in code_cells(framework, chapter)
             if set(assigns) <= assigned_names(source)]
    if len(found) != 1:
        raise LookupError(f"expected one cell of {chapter} ({framework}) assigning "
                          f"{', '.join(sorted(assigns))}, found {len(found)}")
    namespace = chapter_namespace(framework, chapter, frozenset())
    namespace.update(variables)
    exec(compile(found[0], f"<{chapter}:{framework}>", "exec"), namespace)
    return namespace


def train_setting(framework, name, **variables):
    """The value the DCGAN chapter's ``train`` gives ``name`` (e.g. 'adam',
    its optimizer settings), computed from ``variables`` such as ``lr``."""
    namespace = chapter_namespace(framework, "dcgan", frozenset())
    trains = [node for source in code_cells(framework, "dcgan")
              for node in ast.parse(source).body
              if isinstance(node, ast.FunctionDef) and node.name == "train"]
    found = [node for node in trains[0].body if isinstance(node, ast.Assign)
             and [getattr(target, "id", None) for target in node.targets] == [name]]
    if len(trains) != 1 or len(found) != 1:
        raise LookupError(f"expected one train() in dcgan ({framework}) assigning "
                          f"{name} once, found {len(trains)} train() and {len(found)}")
    namespace.update(variables)
    return eval(compile(ast.Expression(found[0].value), f"<dcgan:{framework}>", "eval"),
                namespace)


def data_iter(framework, images, batch_size):
    """The DCGAN chapter's own data-pipeline cell, run on uint8 images (N, 64, 64, 3)."""
    return run_cell(framework, "dcgan", {"X_all", "data_iter"},
                    images=images, batch_size=batch_size)["data_iter"]
