

def test_a_lone_article_is_kept_as_the_answer():
    from deltaprompts.verifiers import score_answer
    from deltaprompts.verifiers.text import normalize_string

    assert normalize_string("A") == "a" and normalize_string("(A)") == "a" and normalize_string("the cat") == "cat"
    assert score_answer("A", "A", "string") == 1.0 and score_answer("B", "A", "string") == 0.0
