"""Exam-content HTML: what is refused, what the sanitiser keeps, which assets are referenced."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.html import asset_references, html_problems, sanitise

UNSAFE = [
    ("<p>2+2?</p><script>fetch('/x')</script>", "<script> element"),
    ('<p onclick="steal()">Which?</p>', "event handler onclick="),
    ('<img src="x" onerror="steal()">', "event handler onerror="),
    ('<img src="javascript:alert(1)">', "javascript: URL"),
    ('<img src="java&#x09;script:alert(1)">', "javascript: URL"),
    ('<img src="https://cdn.example.com/chart.png">', "remote URL"),
    ('<img src="http://cdn.example.com/chart.png">', "remote URL"),
    ('<img src="//cdn.example.com/chart.png">', "remote URL"),
    ('<audio src="https://example.com/a.mp3" controls></audio>', "remote URL"),
    ('<img src="data:image/png;base64,iVBORw0KGgo=">', "data: URL"),
    ('<iframe src="asset:x"></iframe>', "<iframe> element"),
    ('<object data="asset:x"></object>', "<object> element"),
    ('<form action="/steal"><input name="a"></form>', "<form> element"),
    ("<style>body{display:none}</style>", "<style> element"),
    ("<svg><script>1</script></svg>", "<svg> element"),
]


@pytest.mark.parametrize(("html", "phrase"), UNSAFE)
def test_unsafe_html_is_named(html: str, phrase: str) -> None:
    """Each kind of unsafe markup is reported with a message naming it."""
    problems = html_problems(html)
    assert any(phrase in p for p in problems), problems


@pytest.mark.parametrize(("html", "phrase"), UNSAFE)
def test_sanitised_unsafe_html_has_no_problems_left(html: str, phrase: str) -> None:
    """Whatever unsafe markup went in, the sanitiser's output passes the checks."""
    assert html_problems(sanitise(html)) == []


def test_unsupported_elements_and_attributes_are_named() -> None:
    """Harmless but unsupported markup is named too, so nothing is silently dropped."""
    problems = html_problems('<a href="asset:x">a</a><p class="c" style="color:red">b</p>')
    assert any("<a> is not allowed" in p for p in problems)
    assert any("class= on <p>" in p for p in problems)
    assert any("style= on <p>" in p for p in problems)


def test_relative_src_is_refused_with_the_asset_form() -> None:
    """A plain file name in src is refused with a hint to write asset:NAME."""
    problems = html_problems('<img src="chart.png">')
    assert problems and "asset:NAME" in problems[0]


def test_exam_content_is_kept() -> None:
    """The allowlisted elements, attributes and asset URLs pass unchanged."""
    html = (
        "<p>下图是<b>网络图</b>，求关键路径 <sub>1</sub><sup>2</sup></p>"
        '<img src="asset:network.png" alt="network" width="320" height="160">'
        '<audio src="asset:listen-1" controls=""></audio>'
        "<table><thead><tr><th>A</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>"
        "<ul><li><code>x</code></li></ul><pre>y</pre>"
    )
    assert html_problems(html) == []
    assert sanitise(html) == html


def test_sanitise_drops_remote_and_script_urls() -> None:
    """The sanitiser removes non-asset URLs and script content."""
    cleaned = sanitise('<img src="https://x/y.png" alt="y"><script>a()</script><p>ok</p>')
    assert cleaned == '<img alt="y"><p>ok</p>'


def test_asset_references_lists_names() -> None:
    """asset_references finds every asset:NAME used in src attributes."""
    html = '<p><img src="asset:a.png"><img src="asset:b_2.png"></p><audio src="asset:c"></audio>'
    assert asset_references(html) == {"a.png", "b_2.png", "c"}
    assert asset_references("<p>no pictures</p>") == set()
    assert asset_references('<iframe src="asset:x"></iframe>') == set()  # removed, so not used


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("<>/=\"' abpimgsrc:onerrorasset.xyz中文&;")), max_size=80)
)
def test_sanitise_output_is_safe_and_stable(html: str) -> None:
    """For any input, sanitised output has no problems and sanitising again changes nothing."""
    once = sanitise(html)
    assert html_problems(once) == []
    assert sanitise(once) == once
