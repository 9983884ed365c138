from django.template import Context, Template

from workflow_site.invisible_chars import has_hidden, reveal


def test_right_to_left_override_is_shown_as_a_named_marker():
    assert reveal("abc\u202egpj.exe") == "abc⟨U+202E⟩gpj.exe"


def test_zero_width_and_odd_spaces_are_shown_but_letters_and_plain_spaces_are_not():
    assert reveal("P-1\u200b") == "P-1⟨U+200B⟩"
    assert reveal("a\u00a0b") == "a⟨U+00A0⟩b"
    assert reveal("Zürich 12 ünd ÅÄÖ") == "Zürich 12 ünd ÅÄÖ"
    assert not has_hidden("ordinary id 42") and has_hidden("x\ufeff")


def test_the_template_filter_escapes_the_value_and_isolates_it():
    rendered = Template("{% load loupe_format %}{{ v|reveal }}").render(Context({"v": "<b>\u202eid"}))
    assert rendered.startswith('<bdi>&lt;b&gt;<span class="hidden-char" title="U+202E RIGHT-TO-LEFT OVERRIDE">')
    assert "⟨U+202E⟩</span>id</bdi>" in rendered
    assert "\u202e" not in rendered
