"""How tests find a chapter's cells by the names they assign."""
from tools.chapter_code import assigned_names


def test_assigned_names_include_tuple_targets_and_skip_attributes():
    source = "a, b = 1, 2\nc = d = 3\nx.y = 4\nfor e in f: pass\n"
    assert assigned_names(source) == {"a", "b", "c", "d"}
