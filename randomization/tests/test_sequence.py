"""The permuted-block sequence on its own (no database): reproducible from its seed, balanced in every
block, unbiased over many seeds, as predictable as `predictability` says, and committed to exactly."""

import hashlib
import re
from collections import Counter
from fractions import Fraction
from functools import cache
from itertools import accumulate

import pytest

from randomization import sequence
from randomization.sequence import CONTROL, INTERVENTION, Segment, design

DEFAULT = design((2, 4, 6), (1, 1))
FIXED_FOUR = design((4,), (1, 1))
TWO_TO_ONE = design((3, 6), (2, 1))

LISTS = 2000
# Critical values of the chi-square distribution at the 0.001 level, by degrees of freedom.
CHI_SQUARE_0_001 = {1: 10.83, 2: 13.82, 6: 22.46}


def seed_of(index: int) -> bytes:
    return hashlib.sha256(str(index).encode()).digest()


@cache
def many_lists(the_design: sequence.Design, min_length: int = 48) -> tuple[tuple[sequence.Entry, ...], ...]:
    """LISTS lists of the design from deterministic seeds, so that a statistical test never flickers."""
    return tuple(tuple(sequence.generate(Segment(seed_of(i), the_design, min_length))) for i in range(LISTS))


def blocks_of(entries) -> list[list[sequence.Entry]]:
    blocks: dict[int, list[sequence.Entry]] = {}
    for entry in entries:
        blocks.setdefault(entry.block, []).append(entry)
    return list(blocks.values())


def chi_square(observed: list[int], expected: list[float]) -> float:
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected))


# --- Reproducible from the seed ----------------------------------------------------------------------------


def test_it_gives_the_same_list_for_the_same_seed_and_design():
    first = sequence.generate(Segment(seed_of(1), DEFAULT, 30))
    again = sequence.generate(Segment(seed_of(1), design([6, 2, 4, 4], (1, 1)), 30))
    assert first == again
    assert len(first) >= 30


def test_it_gives_different_lists_for_different_seeds():
    arms = {tuple(entry.arm for entry in sequence.generate(Segment(seed_of(i), DEFAULT, 30))) for i in range(200)}
    assert len(arms) == 200


def test_it_numbers_positions_and_blocks_without_gaps_and_stops_after_a_whole_block():
    entries = sequence.generate(Segment(seed_of(7), DEFAULT, 18))
    assert [entry.position for entry in entries] == list(range(1, len(entries) + 1))
    blocks = blocks_of(entries)
    assert [block[0].block for block in blocks] == list(range(1, len(blocks) + 1))
    assert all(len(block) == block[0].block_size for block in blocks)
    assert 18 <= len(entries) < 18 + 6


def test_it_continues_positions_and_blocks_when_a_list_is_extended_and_keeps_the_first_part():
    first = Segment(seed_of(1), DEFAULT, 18)
    second = Segment(seed_of(2), FIXED_FOUR, 8)
    whole = sequence.generate_list([first, second])
    before = sequence.generate(first)
    assert whole[: len(before)] == before
    added = whole[len(before) :]
    assert added == sequence.generate(second, first_position=len(before) + 1, first_block=before[-1].block + 1)
    assert [entry.position for entry in whole] == list(range(1, len(whole) + 1))
    assert {entry.block_size for entry in added} == {4}


# --- Balanced blocks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_design", "share"),
    [(DEFAULT, Fraction(1, 2)), (FIXED_FOUR, Fraction(1, 2)), (TWO_TO_ONE, Fraction(2, 3))],
    ids=["1:1 sizes 2,4,6", "1:1 size 4", "2:1 sizes 3,6"],
)
def test_it_balances_every_block_at_the_ratio(the_design, share):
    for entries in many_lists(the_design)[:300]:
        for block in blocks_of(entries):
            intervention = sum(entry.arm == INTERVENTION for entry in block)
            assert Fraction(intervention, len(block)) == share
            assert len(block) in the_design.block_sizes
            assert {entry.arm for entry in block} == {INTERVENTION, CONTROL}


def test_it_never_lets_one_arm_run_ahead_by_more_than_half_the_largest_block():
    largest_gap = 0
    for entries in many_lists(DEFAULT):
        running = accumulate(1 if entry.arm == INTERVENTION else -1 for entry in entries)
        largest_gap = max(largest_gap, *(abs(difference) for difference in running))
    assert largest_gap <= max(DEFAULT.block_sizes) // 2
    # ... and over so many lists the extreme is reached: the bound is tight, not vacuous.
    assert largest_gap == max(DEFAULT.block_sizes) // 2


def test_it_draws_every_block_size_about_equally_often():
    # The first three blocks of every list (a list of at least 18 entries from blocks of at most 6 always
    # has them): a fixed number of independent draws, so the chi-square test applies exactly.
    drawn = Counter(blocks_of(entries)[i][0].block_size for entries in many_lists(DEFAULT) for i in range(3))
    sizes = DEFAULT.block_sizes
    total = 3 * LISTS
    statistic = chi_square([drawn[size] for size in sizes], [total / len(sizes)] * len(sizes))
    assert set(drawn) == set(sizes)
    assert statistic < CHI_SQUARE_0_001[len(sizes) - 1]


def test_it_gives_each_arm_half_of_the_entries_overall_and_at_every_position():
    lists = many_lists(DEFAULT)
    arms = Counter(entry.arm for entries in lists for entry in entries)
    assert arms[INTERVENTION] == arms[CONTROL]
    for position in range(1, 19):
        intervention = sum(entries[position - 1].arm == INTERVENTION for entries in lists)
        statistic = chi_square([intervention, LISTS - intervention], [LISTS / 2, LISTS / 2])
        assert statistic < CHI_SQUARE_0_001[1], position


def test_it_gives_two_thirds_to_intervention_in_a_two_to_one_design():
    arms = Counter(entry.arm for entries in many_lists(TWO_TO_ONE) for entry in entries)
    assert arms[INTERVENTION] == 2 * arms[CONTROL]


# --- Predictability (the convergence strategy) --------------------------------------------------------------


def test_it_knows_the_expected_correct_guesses_in_small_blocks():
    assert sequence.expected_correct_in_block(2, (1, 1)) == Fraction(3, 2)
    assert sequence.expected_correct_in_block(4, (1, 1)) == Fraction(17, 6)
    assert sequence.predictability(FIXED_FOUR) == Fraction(17, 24)


@pytest.mark.parametrize("the_design", [DEFAULT, FIXED_FOUR, TWO_TO_ONE], ids=["2,4,6 1:1", "4 1:1", "3,6 2:1"])
def test_its_predictability_is_what_a_guesser_achieves_on_generated_lists(the_design):
    correct = guesses = 0.0
    for entries in many_lists(the_design):
        right, length = sequence.guess_outcomes([entry.arm for entry in entries], the_design.ratio)
        correct += right
        guesses += length
    assert correct / guesses == pytest.approx(float(sequence.predictability(the_design)), abs=0.005)


def test_it_finds_fixed_blocks_of_four_more_predictable_than_mixed_sizes_and_never_below_a_half():
    assert Fraction(1, 2) < sequence.predictability(DEFAULT) < sequence.predictability(FIXED_FOUR) < 1


def test_a_guesser_scores_one_half_at_a_tie_and_one_when_an_arm_is_behind():
    assert sequence.guess_outcomes([INTERVENTION, CONTROL], (1, 1)) == (1.5, 2)
    assert sequence.guess_outcomes([INTERVENTION, INTERVENTION], (1, 1)) == (0.5, 2)


# --- The canonical text and its commitment ------------------------------------------------------------------


def test_its_canonical_text_has_the_documented_format_and_the_commitment_is_its_sha256():
    seed = bytes(range(32))
    segment = Segment(seed, design((4, 2), (1, 1)), 6)
    entries = sequence.generate(segment)
    text = sequence.canonical_text("OEI", [segment], entries)
    lines = text.split("\n")
    assert text.endswith("\n") and lines[-1] == ""
    assert lines[0] == "Family Partner trial allocation list, format 1"
    assert lines[1] == "site: OEI"
    assert lines[2] == f"segment 1: seed {seed.hex()}; ratio 1:1; block sizes 2,4; minimum length 6"
    assert seed.hex() == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    entry_lines = lines[3:-1]
    assert len(entry_lines) == len(entries)
    for line, entry in zip(entry_lines, entries):
        assert re.fullmatch(r"\d+ \d+ [246] (intervention|control)", line)
        assert line == f"{entry.position} {entry.block} {entry.block_size} {entry.arm}"
    assert sequence.commitment("OEI", [segment], entries) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_its_canonical_text_has_one_line_per_segment_in_order():
    segments = [Segment(seed_of(1), DEFAULT, 18), Segment(seed_of(2), TWO_TO_ONE, 6)]
    lines = sequence.canonical_text("LAR", segments, sequence.generate_list(segments)).split("\n")
    assert lines[2].startswith(f"segment 1: seed {seed_of(1).hex()}; ratio 1:1; block sizes 2,4,6;")
    assert lines[3] == f"segment 2: seed {seed_of(2).hex()}; ratio 2:1; block sizes 3,6; minimum length 6"
    assert lines[4].startswith("1 1 ")


def test_its_commitment_changes_when_any_single_arm_changes():
    segment = Segment(seed_of(3), DEFAULT, 18)
    entries = sequence.generate(segment)
    original = sequence.commitment("OEI", [segment], entries)
    flip = {INTERVENTION: CONTROL, CONTROL: INTERVENTION}
    changed = set()
    for i, entry in enumerate(entries):
        altered = [*entries[:i], sequence.Entry(entry.position, entry.block, entry.block_size, flip[entry.arm])]
        altered += entries[i + 1 :]
        changed.add(sequence.commitment("OEI", [segment], altered))
    assert original not in changed
    assert len(changed) == len(entries)


def test_its_commitment_depends_on_the_seed_and_the_site_so_that_it_hides_the_list():
    segment = Segment(seed_of(4), DEFAULT, 18)
    entries = sequence.generate(segment)
    same_entries_other_seed = Segment(seed_of(5), DEFAULT, 18)
    assert sequence.commitment("OEI", [segment], entries) != sequence.commitment(
        "OEI", [same_entries_other_seed], entries
    )
    assert sequence.commitment("OEI", [segment], entries) != sequence.commitment("LAR", [segment], entries)


# --- The seeded stream and the design's checks -------------------------------------------------------------


def test_its_stream_draws_every_number_below_n_about_equally_often():
    stream = sequence.SeededStream(seed_of(9))
    draws = [stream.below(7) for _ in range(70_000)]
    assert min(draws) == 0 and max(draws) == 6
    counts = Counter(draws)
    assert chi_square([counts[n] for n in range(7)], [10_000] * 7) < CHI_SQUARE_0_001[6]


def test_its_stream_is_reproducible_and_below_one_is_always_zero():
    first, again = sequence.SeededStream(b"seed"), sequence.SeededStream(b"seed")
    assert [first.below(1000) for _ in range(50)] == [again.below(1000) for _ in range(50)]
    assert {sequence.SeededStream(b"seed").below(1) for _ in range(10)} == {0}
    large = sequence.SeededStream(b"seed")
    assert all(0 <= large.below(2**63 + 1) <= 2**63 for _ in range(100))


@pytest.mark.parametrize(
    ("block_sizes", "ratio", "problems"),
    [
        ((2, 4, 6), (1, 1), []),
        ((3, 6), (2, 1), []),
        ((4,), (1, 1), []),
        ((2, 4), (0, 1), ["ratio"]),
        ((2, 4), (1, 0), ["ratio"]),
        ((), (1, 1), ["block_sizes"]),
        ((1, 2), (1, 1), ["block_sizes"]),
        ((3,), (1, 1), ["block_sizes_multiple"]),
        ((2, 4, 6), (2, 1), ["block_sizes_multiple"]),
        ((2, 22), (1, 1), ["block_sizes_too_large"]),
        ((6, 9), (2, 1), []),
    ],
)
def test_its_design_names_what_is_wrong(block_sizes, ratio, problems):
    assert design(block_sizes, ratio).problems() == problems
