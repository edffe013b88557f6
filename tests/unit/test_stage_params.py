"""The README's table of what each stage reads is dvc.yaml's `params:`, regenerated."""

from __future__ import annotations

from retrain.markdown import markers
from retrain.stage_params import BLOCK, main, params_table, stage_params
from tests.conftest import REPO

PIPELINE = """
stages:
  prepare:
    cmd: python -m retrain.stages.prepare
    params:
      - seed
      - prepare
      - model.n_bins
  score:
    cmd: python -m retrain.stages.score
    params:
      - params.yaml: [dataset.target, score.batch]
      - extra.yaml: [limit]
      - more.yaml:
"""


def test_the_readme_table_is_dvc_yamls_own():
    start, end = markers(BLOCK)
    readme = (REPO / "README.md").read_text()
    assert start in readme and end in readme, "README.md has no stage-params block"
    block = readme.split(start)[1].split(end)[0]
    assert block.strip() == params_table((REPO / "dvc.yaml").read_text()).strip(), (
        "README's stage-params block is stale: python -m retrain.stage_params README.md"
    )


def test_the_table_shows_keys_of_other_sections_apart():
    assert stage_params({"stages": {}}) == {}
    table = params_table(PIPELINE)
    assert "| **prepare** | `prepare` | `seed` | `model.n_bins` |" in table
    assert (
        "| **score** | `score.batch` | `dataset.target` | `extra.yaml:limit`, `more.yaml` |"
    ) in table


def test_the_command_rewrites_the_block(tmp_path):
    start, end = markers(BLOCK)
    readme, dvc_yaml = tmp_path / "README.md", tmp_path / "dvc.yaml"
    readme.write_text(f"intro\n{start}\nstale\n{end}\nafter\n")
    dvc_yaml.write_text(PIPELINE)
    main([str(readme), str(dvc_yaml)])
    text = readme.read_text()
    assert "stale" not in text and "| **prepare** |" in text and text.endswith(f"{end}\nafter\n")
