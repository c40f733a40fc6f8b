"""Word-level marks inside changed line pairs: what they wrap, escaping, bounds."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from reviews.inspect.diffing import diff_file
from reviews.inspect.render import render_side_by_side, render_unified
from reviews.inspect.words import MAX_LINE_CHARS, mark_diff, mark_pair


class _Nesting(HTMLParser):
    """Fails on a closing tag that does not close the innermost open one, or on a <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "script":
            self.scripts += 1
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes {self.stack}"
        self.stack.pop()


def well_nested(fragment: str) -> bool:
    parser = _Nesting()
    parser.feed(fragment)
    parser.close()
    return not parser.stack and parser.scripts == 0


def marked(fragment: str, css: str) -> list[str]:
    return re.findall(rf'<span class="{css}">(.*?)</span>', fragment)


def test_only_the_changed_word_is_marked():
    result = mark_pair("const colour = red;", "const colour = blue;")

    assert result is not None
    old, new = result
    assert marked(old, "gr-del") == ["red"]
    assert marked(new, "gr-ins") == ["blue"]
    assert re.sub(r"<[^>]+>", "", new) == "const colour = blue;"


def test_marks_close_and_reopen_around_highlighting_tags():
    old = '<span class="k">let</span> <span class="n">a</span> = <span class="mi">1</span>;'
    new = '<span class="k">let</span> <span class="n">b</span> = <span class="mi">2</span>;'

    result = mark_pair(old, new)

    assert result is not None
    old_out, new_out = result
    assert '<span class="n"><span class="gr-ins">b</span></span>' in new_out
    assert '<span class="mi"><span class="gr-del">1</span></span>' in old_out
    assert well_nested(old_out)
    assert well_nested(new_out)


def test_hostile_words_stay_escaped_and_the_markup_well_nested():
    old = b'x = "<b>safe</b>";\n'
    new = b'x = "<script>alert(1)</script>";\n'

    diff = mark_diff(diff_file(old, new, "a.js"))
    for page in (render_unified(diff, "a.js"), render_side_by_side(diff, "a.js")):
        assert "<script" not in page
        assert '"<script>alert(1)</script>"' in html.unescape(re.sub(r"<[^>]+>", "", page))
        assert 'class="gr-ins"' in page
        assert 'class="gr-del"' in page
        assert well_nested(page)


def test_entities_count_as_one_character():
    result = mark_pair("a &lt; b &amp;&amp; c", "a &lt; d &amp;&amp; c")

    assert result is not None
    assert marked(result[1], "gr-ins") == ["d"]
    assert "&lt;" in result[1]
    assert "&amp;&amp;" in result[1]


def test_bidi_markers_keep_their_span():
    old = 'x = <span class="gr-char gr-char-bidi" title="U+202E">[U+202E]</span>a'
    new = 'x = <span class="gr-char gr-char-bidi" title="U+202E">[U+202E]</span>b'

    result = mark_pair(old, new)

    assert result is not None
    assert well_nested(result[1])
    assert 'title="U+202E">[U+202E]</span>' in result[1]


def test_lines_over_the_limit_are_not_compared():
    long_old = "a " * MAX_LINE_CHARS
    long_new = "b " + "a " * (MAX_LINE_CHARS - 1)

    assert mark_pair(long_old, long_new) is None
    assert mark_pair("x = 1", "x = 2", max_chars=3) is None


def test_lines_with_little_in_common_are_not_marked():
    assert mark_pair("return compute(total);", "// nothing alike here at all") is None


def test_the_unified_and_side_by_side_views_get_the_same_marks():
    old = b"const a = 1;\nconst size = 10;\nconst c = 3;\n"
    new = b"const a = 1;\nconst size = 20;\nconst c = 3;\nconst d = 4;\n"

    diff = mark_diff(diff_file(old, new, "a.txt"))

    unified = render_unified(diff, "a.txt")
    split = render_side_by_side(diff, "a.txt")
    for page in (unified, split):
        assert marked(page, "gr-del") == ["10"]
        assert marked(page, "gr-ins") == ["20"]
    # The lone added line has no partner: no word marks on it.
    assert "const d = 4;" in unified


def test_a_text_run_that_is_one_character_reference():
    old = '<span class="o">&lt;</span> a'
    new = '<span class="o">&gt;</span> a'

    result = mark_pair(old, new)

    assert result is not None
    assert result[0] == '<span class="o"><span class="gr-del">&lt;</span></span> a'
    assert result[1] == '<span class="o"><span class="gr-ins">&gt;</span></span> a'


def test_a_long_changed_middle_is_marked_whole():
    old = "start " + " ".join(f"w{n}" for n in range(60)) + " end"
    new = "start " + " ".join(f"v{n}" for n in range(60)) + " end"

    result = mark_pair(old, new, max_chars=10_000)

    assert result is None  # under 30 % in common
    longer_old = "same " * 80 + " ".join(f"w{n}" for n in range(30)) + " end"
    longer_new = "same " * 80 + " ".join(f"v{n}" for n in range(30)) + " end"
    result = mark_pair(longer_old, longer_new, max_chars=10_000)
    assert result is not None
    assert len(marked(result[1], "gr-ins")) == 1  # one run, from v0 to v29


def test_marks_stop_at_the_character_budget(monkeypatch):
    from reviews.inspect import words

    old = "".join(f"const value{n} = {n};\n" for n in range(50)).encode()
    new = old.replace(b"= ", b"= -")
    diff = diff_file(old, new, "a.txt")
    monkeypatch.setattr(words, "MAX_CHARS_PER_FILE", 200)

    page = render_unified(mark_diff(diff), "a.txt")

    assert 0 < page.count('class="gr-ins"') < 50
