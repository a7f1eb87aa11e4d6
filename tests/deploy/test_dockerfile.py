"""The Dockerfile, read without a Docker engine: its stages, what it copies, who runs
the final image, and that the chart runs the image the way the image expects."""

from __future__ import annotations

import fnmatch
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy import ROOT, render

DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "cc ", "python3-dev",
               "libpq-dev", "cargo", "rustc")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [v for i, v in self.instructions if i == instruction]


def stages() -> list[Stage]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    args = {}
    result: list[Stage] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "ARG" and not result:
            name, _, default = value.partition("=")
            args[name] = default
        elif instruction == "FROM":
            words = value.split()
            base = words[0]
            for name, default in args.items():
                base = base.replace("${" + name + "}", default).replace("$" + name, default)
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(base, alias))
        elif instruction != "COMMENT":
            assert result, f"{instruction} before FROM"
            result[-1].instructions.append((instruction, value))
    return result


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
               or fnmatch.fnmatch(parts[-1], pattern.removeprefix("**/"))
               for pattern in patterns for prefix in prefixes)


def test_multi_stage_on_slim_python_311() -> None:
    builder, *_, final = stages()
    assert len(stages()) >= 2
    assert builder.base == final.base == "python:3.11-slim"
    assert builder.name == "builder"
    build = " ".join(builder.values("RUN"))
    assert "pip wheel" in build and "/opt/phimask" in build


def test_every_copied_path_exists_and_is_not_ignored() -> None:
    patterns = dockerignore()
    local: list[str] = []
    for stage in stages():
        for value in stage.values("COPY") + stage.values("ADD"):
            words = shlex.split(value)
            if any(w.startswith("--from=") for w in words):
                continue
            sources = [w for w in words if not w.startswith("--")][:-1]
            assert sources, value
            local.extend(sources)
    assert local, "the build copies the sources"
    for source in local:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    # What the wheel build reads: the package and its metadata (readme = README.md).
    assert {"pyproject.toml", "README.md"} <= set(local)
    assert any(s.rstrip("/") == "plugin" for s in local)


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = dockerignore()
    for path in (".venv", ".git", ".state", ".pytest_cache", ".mypy_cache", "tests",
                 "bench/results", "plugin/phimask/__pycache__"):
        assert ignored(path, patterns), path


def test_final_stage_runs_as_uid_10001_with_phimask_entrypoint() -> None:
    final = stages()[-1]
    (user,) = final.values("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) == 10001, "numeric, so runAsNonRoot can check it"
    creation = " ".join(final.values("RUN"))
    assert "--uid 10001" in creation
    copies = final.values("COPY")
    assert copies and all("--from=builder" in c for c in copies), "only the built venv"
    assert json.loads(final.values("ENTRYPOINT")[-1]) == ["phimask"]
    cmd = json.loads(final.values("CMD")[-1])
    assert cmd[0] == "serve"
    # The state dir phimask writes to belongs to the user.
    assert "chown 10001:10001 /var/lib/phimask" in creation


def test_no_build_tools_in_the_final_stage() -> None:
    final = stages()[-1]
    text = " ".join(final.values("RUN")).lower()
    for tool in BUILD_TOOLS:
        assert tool not in text, tool
    assert "apt-get install" not in text and "pip install" not in text


@pytest.mark.parametrize("case", ["default", "aggregator"])
def test_the_chart_runs_the_image_as_the_image_expects(case: str) -> None:
    r = render(case)
    final = stages()[-1]
    uid = int(final.values("USER")[0].split(":")[0])
    assert r.phimask["securityContext"]["runAsUser"] == uid
    assert "command" not in r.phimask and r.phimask["args"][0] == "serve"
    workdir = Path(final.values("WORKDIR")[-1])
    assert str(workdir) == r.flag("--state-dir")
