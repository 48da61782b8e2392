"""The documentation site builds with MkDocs' strict checks, and those checks catch a broken link."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "mkdocs", "build", "--strict", "--config-file", root / "mkdocs.yml", "--site-dir", site],
        cwd=root,  # where mkdocs.yml's snippets look for files (base_path)
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # not Material's notice of MkDocs 2


def test_the_site_builds_with_strict_link_checks(tmp_path):
    done = _build(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "reliability" / "index.html").is_file()
    # The models page shows the committed leaderboard itself (a snippet), so its figures cannot go stale.
    champion = next(row for row in (ROOT / "leaderboard.md").read_text().splitlines() if "(champion)" in row)
    assert champion.split("|")[2].strip() in (tmp_path / "site" / "models" / "index.html").read_text()


def test_every_page_is_in_the_nav():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(entries):
        for entry in entries:
            for value in entry.values():
                yield from pages(value) if isinstance(value, list) else [value]

    assert sorted(pages(nav)) == sorted(path.name for path in (ROOT / "docs").glob("*.md"))


def test_a_broken_anchor_fails_the_strict_build(tmp_path):
    """The site's own config on two of its pages (a smaller build), one linking to a section the other lacks."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump({**config, "nav": ["index.md", "pipeline.md"]}))
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "pipeline.md", tmp_path / "docs")
    (tmp_path / "docs" / "index.md").write_text("# fer\n\nSee [the stages](pipeline.md#no-such-section).\n")
    done = _build(tmp_path, tmp_path / "site")
    assert done.returncode != 0 and "no-such-section" in done.stdout + done.stderr


def test_the_readmes_links_into_the_repository_resolve():
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert "docs/pipeline.md" in links
    assert [link for link in links if not (ROOT / link).exists()] == []
