"""Every YAML file under deploy/ passes yamllint (deploy/.yamllint.yaml): no duplicate keys,
consistent indentation, no stray syntax that one tool would read differently from another."""

from __future__ import annotations

from pathlib import Path

from yamllint import linter
from yamllint.config import YamlLintConfig

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_deploy_yaml_passes_yamllint() -> None:
    config = YamlLintConfig(file=str(DEPLOY / ".yamllint.yaml"))
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 12
    problems = [
        f"{path.relative_to(DEPLOY)}:{problem.line}: {problem.desc} ({problem.rule})"
        for path in files
        for problem in linter.run(path.read_text(), config, str(path))
    ]
    assert problems == []
