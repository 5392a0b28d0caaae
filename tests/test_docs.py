"""The repository's docs stand alone and agree with each other."""

from __future__ import annotations

import re

import pytest

from conftest import REPO


def test_no_file_sends_the_reader_outside_the_repository():
    texts = [REPO / "README.md", *REPO.glob("docs/**/*.md"), *REPO.glob("weights/*.md"), *REPO.glob("examples/*.md"),
             *REPO.glob("examples/*.sh"), *REPO.glob("facealgebra/**/*.py")]
    assert [str(path.relative_to(REPO)) for path in texts if "../shared" in path.read_text()] == []


@pytest.mark.parametrize("page", ["README.md", "docs/design.md", "examples/README.md"])
def test_relative_links_lead_to_files(page):
    text = (REPO / page).read_text()
    targets = re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text)
    assert [target for target in targets if not ((REPO / page).parent / target).exists()] == []


def test_the_gallery_script_and_its_readme_give_the_same_time():
    times = [re.findall(r"(\d+) s of CPU time", (REPO / "examples" / name).read_text())
             for name in ("README.md", "make_gallery.sh")]
    assert times[0] and times[0] == times[1]
