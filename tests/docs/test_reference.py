"""The documentation's command references are the command line's own help, and every page is
reachable: a stale reference or a page left out of the site's navigation fails here, not on the site."""

from pathlib import Path

from hpdirs_cli.reference import pages

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_the_generated_references_are_what_the_command_line_says_now():
    made = pages()
    on_disk = {path.stem: path.read_text(encoding="utf-8") for path in (DOCS / "generated").glob("*.md")}
    stale = sorted(name for name in made if on_disk.get(name) != made[name])
    assert not stale, f"docs/generated/ is stale for {stale}: run `make reference` and commit the result"
    assert set(on_disk) == set(made), f"docs/generated/ holds pages of no command: {set(on_disk) - set(made)}"


def test_every_command_has_a_page_that_includes_its_reference():
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in pages():
        page = DOCS / "commands" / f"{name}.md"
        assert page.is_file(), f"no docs page for `hpdirs {name}`"
        assert f'--8<-- "{name}.md"' in page.read_text(), f"{page.name} does not include its generated reference"
        assert f"commands/{name}.md" in nav, f"mkdocs.yml's nav has no {name} page"


def test_every_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    written = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "generated" not in p.parts]
    missing = [page for page in written if f" {page}" not in nav]
    assert not missing, f"pages no reader can reach (add them to mkdocs.yml's nav): {missing}"


def test_the_readme_s_headline_numbers_are_rows_of_the_docs_tables():
    """README repeats a few rows of the Performance and Quality tables; they are those rows, verbatim,
    so the two cannot drift apart."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headline = readme.split("## Headline numbers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in headline.splitlines() if line.startswith("| ") and not line.startswith("| set ")]
    measured = (DOCS / "performance.md").read_text(encoding="utf-8") + (DOCS / "quality.md").read_text(encoding="utf-8")
    assert len(rows) >= 8
    assert [row for row in rows if row not in measured] == []
