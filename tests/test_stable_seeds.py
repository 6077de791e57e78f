"""The seed helpers built on rng.stable_digest give the numbers the hand-rolled blake2b formulas gave."""

from __future__ import annotations

from deltaprompts.rng import derive_seed, stable_digest, stable_int


def test_stable_int_matches_the_old_formulas():
    # int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), order), computed before the change
    assert stable_int("0|teacher", 4) == 990811371  # score.role_seed(0, "teacher")
    assert stable_int("7|student", 4) == 3477590428  # score.role_seed(7, "student")
    assert stable_int("3|abc", 8, "big") / 2**64 == 0.7555984692780218  # split._draw("abc", 3)
    assert stable_int("0|x", 8, "big") / 2**64 == 0.7221921661478066  # split._draw("x", 0)
    assert stable_int("0|item-1", 8) == 5275061734097201767  # divergence.records.item_seed(0, "item-1")
    assert stable_int("42|q", 8) == 17417322874310442452
    assert stable_digest("a|1|2.5", 16).hex() == "31ba7af299ce67399b6a4c09b84a3304"  # models.simulated._digest


def test_the_sites_keep_their_numbers():
    from deltaprompts.divergence import adaptive, null
    from deltaprompts.divergence.records import item_seed
    from deltaprompts.models import simulated
    from deltaprompts.split import _draw

    assert _draw("abc", 3) == 0.7555984692780218
    assert item_seed(42, "q") == 17417322874310442452
    assert int(simulated._rng("a", 1).integers(2**62)) == 2567501937840514784
    assert int(adaptive._rng("x", 3).integers(2**62)) == 1470206753716632687
    assert null._posterior("tv", ((3, 1), (1, 3)), 0.95, 200, 0.5, 0.5) == (0.241711871364969, 0.0)


def test_derive_seed_is_unchanged():
    assert derive_seed(0, "chart.bar", 3) == 16683953445393247095  # computed before the change
