"""Recipe loading: valid recipes load, every user mistake is one clear error naming the key and
its YAML line, and every step (built-in or plugin) is built and checked before any work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import RecipeError
from pipeline.recipe import build_steps, load_recipe
from pipeline.steps import BUILTIN_STEPS
from pipeline.steps.base import PluginFilter, build_step
from pipeline.steps.tokenize import Tokenize
from tests.conftest import ROOT, load_sample

DEFAULT = ROOT / "recipes" / "default.yaml"


def write_recipe(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load(DEFAULT.read_text())
    data.update(changes)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_default_recipe_loads() -> None:
    r = load_recipe(DEFAULT)
    steps = build_steps(r)
    assert [name for name, _ in steps][:3] == ["normalize", "encoding", "language"]
    name, sink = steps[-1]
    assert name == "tokenize" and isinstance(sink, Tokenize) and sink.vocab_size == 8192


def test_a_recipe_without_a_sink_gets_the_default_tokenize_appended(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, steps=[{"step": "normalize"}])
    r = load_recipe(path)
    assert r.steps == [{"step": "normalize"}, {"step": "tokenize"}]
    assert isinstance(build_steps(r)[-1][1], Tokenize)


def test_the_sink_must_be_last_and_old_sections_are_pointed_to_their_new_place(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, steps=[{"step": "tokenize"}, {"step": "normalize"}])
    with pytest.raises(RecipeError, match="steps.0.step: 'tokenize' writes the output: it must be the last"):
        load_recipe(path)
    path = write_recipe(tmp_path, tokenizer={"vocab_size": 1024})
    with pytest.raises(
        RecipeError, match=r"r.yaml:\d+: tokenizer: .*moved into the last step: `- step: tokenize`"
    ):
        load_recipe(path)


def test_no_step_name_is_special_cased_by_the_loader_or_the_runner() -> None:
    for module in ("recipe.py", "run.py"):
        source = (ROOT / "pipeline" / module).read_text()
        named = [n for n in BUILTIN_STEPS if f'"{n}"' in source or f"'{n}'" in source]
        assert not named, f"pipeline/{module} names steps {named}"


def test_dotted_overrides_reach_nested_values() -> None:
    r = load_recipe(
        DEFAULT,
        [
            "output_dir=out/x",
            "steps.2.threshold=0.8",
            "steps.2.languages=[en, fr]",
            "steps.12.val_fraction=0.1",
            "workers=1",
        ],
    )
    assert r.output_dir == "out/x"
    assert r.steps[2]["threshold"] == 0.8 and r.steps[2]["languages"] == ["en", "fr"]
    assert build_steps(r)[-1][1].val_fraction == 0.1 and r.n_workers == 1


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("output_dirr=out/x", "output_dirr: unknown key"),
        ("workers=many", "workers: Input should be a valid integer"),
        ("steps.0.min_chars=abc", "steps.0.min_chars: Input should be a valid integer"),
        ("steps.2.treshold=0.5", "steps.2.treshold: unknown key"),
        ("steps.2.step=langauge", "steps.2.step: unknown step 'langauge'"),
        ("steps.15.x=1", "no list item 15"),
        ("sources.0.path=data/nothing-*.jsonl", "sources.0.path: no input matches"),
        ("sources.0.format=csv", "sources.0.format: Input should be"),
        ("steps.12.vocab_size=10", "steps.12.vocab_size: Input should be greater than or equal to 257"),
        ("steps.2.threshold=5", "steps.2.threshold: Input should be less than or equal to 1 (got 5)"),
        ("steps.11.min_words=4", "steps.11.min_words: must be at least n (6), got 4"),
        ("steps.10.bands=30", "steps.10.bands: bands x rows = 30 x 5 is more than num_perm=112"),
        ("steps.12.val_fraction=1", "steps.12.val_fraction: Input should be less than 1"),
        ("steps.11.pack=nowhere.npz", "steps.11.pack"),
        ("steps.2.step=nowhere_module:Thing", "steps.2.step: cannot import plugin 'nowhere_module:Thing'"),
    ],
)
def test_user_mistakes_name_the_key(override: str, expected: str) -> None:
    with pytest.raises(RecipeError) as e:
        load_recipe(DEFAULT, [override])
    assert expected in str(e.value)
    assert str(DEFAULT) in str(e.value) or "override" in str(e.value)
    assert "\n" not in str(e.value)


def test_errors_name_the_yaml_line_of_the_bad_value(tmp_path: Path) -> None:
    lines = DEFAULT.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "threshold: 0.65" in line)
    lines[at] = lines[at].replace("0.65", "5")
    path = tmp_path / "r.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    assert (
        str(e.value) == f"{path}:{at + 1}: steps.2.threshold: Input should be less than or equal to 1 (got 5)"
    )
    with pytest.raises(RecipeError, match=r"\(override 'steps.2.threshold=2'\): steps.2.threshold"):
        load_recipe(path, ["steps.2.threshold=2"])


def test_plugin_parameters_are_validated(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, steps=[{"step": "my_filters:NoShouting", "max_upper_ratio": "high"}])
    with pytest.raises(RecipeError, match="steps.0.max_upper_ratio: Input should be a valid number"):
        load_recipe(path)


def test_plugin_class_and_function_load_and_filter_real_text() -> None:
    r = load_recipe(ROOT / "recipes" / "plugin_example.yaml")
    kinds = [k for k, _, _ in r.entries()]
    assert kinds == ["normalize", "my_filters:no_redirects", "my_filters:NoShouting", "tokenize"]
    redirects = build_step("my_filters:no_redirects", {}, "no_redirects")
    shouting = build_step("my_filters:NoShouting", {"max_upper_ratio": 0.3}, "NoShouting")
    assert isinstance(redirects, PluginFilter) and isinstance(shouting, PluginFilter)
    wiki = load_sample("wiki_mediawiki_dump_sample.jsonl.gz")
    kept, removed = redirects.apply(wiki, "wiki")
    stubs = [d for d in wiki if d.meta.get("redirect")]
    assert stubs and {r.doc.id for r in removed} == {d.id for d in stubs}
    assert all(r.reason == "redirect" for r in removed)
    prose = load_sample("books_tinyshakespeare.jsonl.gz", 5)
    loud = [type(d)(d.id + "-loud", d.source, d.text.upper(), {}) for d in prose]
    kept, removed = shouting.apply(prose + loud, "books")
    assert [d.id for d in kept] == [d.id for d in prose]
    assert [r.reason for r in removed] == ["shouting"] * len(loud)


def test_cli_reports_recipe_errors_without_traceback(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, steps=[{"step": "gopher_quality", "no_such_param": 1}])
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "plan", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2
    assert "steps.0.no_such_param: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["run", "plan", "verify"])
def test_cli_help(command: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", command, "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0 and "usage:" in proc.stdout


def test_a_filter_can_be_limited_to_some_sources(tmp_path: Path) -> None:
    strict = {"step": "gopher_quality", "min_doc_words": 100_000, "sources": ["web-*"]}
    recipe = load_recipe(write_recipe(tmp_path, steps=[strict]))
    step = build_steps(recipe)[0][1]
    book = load_sample("books_gutenberg.jsonl.gz", 1)[0]
    page = load_sample("web_dolma_cc.jsonl.gz", 1)[0]
    book.source, page.source = "books", "web-cc"
    kept, removed = step.apply([book, page], "u")
    assert [d.id for d in kept] == [book.id] and [r.reason for r in removed] == ["too_few_words"]
    for steps, expected in (
        ([{**strict, "sources": ["wbe-*"]}], "steps.0.sources: 'wbe-*' matches none of the recipe's sources"),
        ([{"step": "exact_dedup", "sources": ["web-*"]}], "steps.0.sources: only per-document filters"),
    ):
        with pytest.raises(RecipeError, match=re.escape(expected)):
            load_recipe(write_recipe(tmp_path, steps=steps))
