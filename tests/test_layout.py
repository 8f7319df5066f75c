"""The package's structure: no import cycle, no import of the package inside a function, the registry of
shipped models importing nothing of the package, and ADM's public import paths still there."""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "guided_diffusion"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """The package's modules that ``path`` imports, each with the import statement (packages included: importing
    ``a.b.c`` runs ``a.b``'s ``__init__`` first)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            if not base.startswith("guided_diffusion"):
                continue
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names if alias.name.startswith("guided_diffusion")]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            found += [(".".join(parts[:i]), node) for i in range(2, len(parts) + 1)]
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        ancestors = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}  # initialised before it runs
        edges[name] = {target for target, _ in imported_modules(path, tree)
                       if target in modules and target != name and target not in ancestors}
    return edges


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])


def test_the_package_is_imported_at_module_level_only():
    """No import of the package inside a function (the way to dodge a cycle)."""
    local = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                local += [f"{path.relative_to(PACKAGE)}:{node.lineno}" for target, node in
                          imported_modules(path, func)]
    assert not local, local


def test_the_model_registry_imports_nothing_of_the_package():
    assert graph()["guided_diffusion.models"] == set()


def test_core_modules_do_not_import_our_concepts():
    """ADM's modules (and the flag, checkpoint and CLI layers beside them) sit below the subpackages."""
    concepts = ("progressive", "sampling", "evaluation", "experiments", "testbeds")
    edges = graph()
    for name, targets in edges.items():
        if name.count(".") == 1 and name.rsplit(".", 1)[1] not in concepts and not _is_reexport(name):
            above = [t for t in targets if t.split(".")[1] in concepts]
            assert not above, (name, above)


def _is_reexport(name: str) -> bool:
    """An old module path kept for code that imports it: a docstring and imports only."""
    path = PACKAGE / f"{name.split('.', 1)[1]}.py"
    if not path.is_file():
        return False
    tree = ast.parse(path.read_text())
    return all(isinstance(n, (ast.ImportFrom, ast.Expr)) for n in tree.body) and "kept" in (
        ast.get_docstring(tree) or "")


@pytest.mark.parametrize("module,names", [
    ("guided_diffusion.nn", "timestep_embedding mean_flat zero_module normalization conv_nd update_ema linear "
                            "avg_pool_nd scale_module checkpoint GroupNorm32 SiLU"),
    ("guided_diffusion.script_util", "create_model_and_diffusion model_and_diffusion_defaults create_classifier "
                                     "classifier_defaults add_dict_to_argparser args_to_dict str2bool "
                                     "create_gaussian_diffusion sr_create_model_and_diffusion"),
    ("guided_diffusion.gaussian_diffusion", "GaussianDiffusion get_named_beta_schedule ModelMeanType mean_flat"),
    ("guided_diffusion.train_util", "TrainLoop update_ema"),
    ("guided_diffusion.guidance", "ClassifierGuidance ProgressiveGuidance ClassifierFreeGuidance"),
    ("guided_diffusion.information_degree", "InformationDegree gamma_per_step uniform_relevance"),
    ("guided_diffusion.relevance", "load_relevance shipped_relevance relevance_from_descriptions"),
    ("guided_diffusion.guided_sampling", "plan_guidance build_guidance sample_batch GuidancePlan"),
    ("guided_diffusion.sampling", "sample_loop prepare to_uint8_nhwc choose_sampler"),
    ("guided_diffusion.evaluation", "NpzImages evaluate extract_npz"),
    ("guided_diffusion.shipped", "manifest shipped_names held_out_metrics default_job_channel_gap"),
])
def test_public_paths_still_import(module, names):
    loaded = importlib.import_module(module)
    missing = [n for n in names.split() if not hasattr(loaded, n)]
    assert not missing, missing


def test_adm_helpers_are_defined_once_in_nn():
    from guided_diffusion import gaussian_diffusion, nn, train_util, unet

    assert unet.timestep_embedding is nn.timestep_embedding and unet.zero_module is nn.zero_module
    assert gaussian_diffusion.mean_flat is nn.mean_flat and train_util.update_ema is nn.update_ema
