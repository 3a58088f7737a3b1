"""Permuted-block allocation sequences, with no database: generating a list from a seed, its canonical
text and SHA-256 commitment, and the design's predictability.

Everything here is specified in docs/allocation-lists.md so that anyone can recompute a list and its
commitment with their own code, from the seeds revealed when the list is unsealed.
"""

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

INTERVENTION = "intervention"
CONTROL = "control"
FORMAT_LINE = "Family Partner trial allocation list, format 1"
# Larger blocks would make the list barely predictable but allow long runs of one arm at a small site.
MAX_BLOCK_SIZE = 20


@dataclass(frozen=True)
class Design:
    """Block sizes drawn with equal probability; within a block, `ratio` intervention : control."""

    block_sizes: tuple[int, ...]
    ratio: tuple[int, int]

    def problems(self) -> list[str]:
        """What makes the design unusable, in plain words (empty when it is fine)."""
        found = []
        k, m = self.ratio
        if k < 1 or m < 1:
            found.append("ratio")
        if not self.block_sizes or any(size < 2 for size in self.block_sizes):
            found.append("block_sizes")
        elif k >= 1 and m >= 1 and any(size % (k + m) for size in self.block_sizes):
            found.append("block_sizes_multiple")
        elif max(self.block_sizes) > MAX_BLOCK_SIZE:
            found.append("block_sizes_too_large")
        return found

    def describe_sizes(self) -> str:
        return ",".join(str(size) for size in self.block_sizes)

    def describe_ratio(self) -> str:
        return f"{self.ratio[0]}:{self.ratio[1]}"


def design(block_sizes: Iterable[int], ratio: tuple[int, int]) -> Design:
    return Design(tuple(sorted(set(block_sizes))), ratio)


def stored_design(block_sizes: object, ratio: tuple[int, int]) -> Design | None:
    """The design a stored generation names, or None when the record names no usable design (it was damaged):
    a list of whole numbers that make a valid design, and nothing else."""
    if not isinstance(block_sizes, list) or not all(
        isinstance(size, int) and not isinstance(size, bool) for size in block_sizes
    ):
        return None
    named = design(block_sizes, ratio)
    return None if named.problems() else named


@dataclass(frozen=True)
class Entry:
    position: int
    block: int
    block_size: int
    arm: str


@dataclass(frozen=True)
class Segment:
    """One generation (the first) or extension of a list: a seed, a design and a minimum length."""

    seed: bytes
    design: Design
    min_length: int


class SeededStream:
    """Integers drawn deterministically from a seed: SHA-256(seed ‖ counter as 8 big-endian bytes) for
    counter 0, 1, 2, ..., read as unsigned 64-bit big-endian words; a number below n by rejection, so
    that every value is exactly equally likely."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0
        self._words: list[int] = []

    def _word(self) -> int:
        if not self._words:
            digest = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
            self._words = [int.from_bytes(digest[i : i + 8], "big") for i in range(24, -1, -8)]
        return self._words.pop()

    def below(self, n: int) -> int:
        limit = 2**64 - (2**64 % n)
        while True:
            word = self._word()
            if word < limit:
                return word % n


def generate(segment: Segment, *, first_position: int = 1, first_block: int = 1) -> list[Entry]:
    """Whole blocks until the segment holds at least `min_length` entries.

    Each block: a size drawn from the design's sizes, then its arms (intervention first, then control,
    in the ratio) shuffled by Fisher-Yates from the last position down."""
    stream = SeededStream(segment.seed)
    k, m = segment.design.ratio
    sizes = segment.design.block_sizes
    entries: list[Entry] = []
    block = first_block
    while len(entries) < segment.min_length:
        size = sizes[stream.below(len(sizes))]
        units = size // (k + m)
        arms = [INTERVENTION] * (units * k) + [CONTROL] * (units * m)
        for i in range(len(arms) - 1, 0, -1):
            j = stream.below(i + 1)
            arms[i], arms[j] = arms[j], arms[i]
        for arm in arms:
            entries.append(Entry(first_position + len(entries), block, size, arm))
        block += 1
    return entries


def generate_list(segments: Sequence[Segment]) -> list[Entry]:
    """A whole list: its segments one after the other, positions and block numbers running on."""
    entries: list[Entry] = []
    for segment in segments:
        first_block = entries[-1].block + 1 if entries else 1
        entries.extend(generate(segment, first_position=len(entries) + 1, first_block=first_block))
    return entries


def canonical_text(site_code: str, segments: Sequence[Segment], entries: Sequence[Entry]) -> str:
    """The text the commitment is the SHA-256 of. The seeds are part of it: they keep the commitment
    hiding (without them, the rest of a partly used list could be found by trying every possibility)."""
    lines = [FORMAT_LINE, f"site: {site_code}"]
    for number, segment in enumerate(segments, start=1):
        lines.append(
            f"segment {number}: seed {segment.seed.hex()}; ratio {segment.design.describe_ratio()}; "
            f"block sizes {segment.design.describe_sizes()}; minimum length {segment.min_length}"
        )
    lines.extend(f"{e.position} {e.block} {e.block_size} {e.arm}" for e in entries)
    return "\n".join(lines) + "\n"


def commitment(site_code: str, segments: Sequence[Segment], entries: Sequence[Entry]) -> str:
    return hashlib.sha256(canonical_text(site_code, segments, entries).encode("utf-8")).hexdigest()


# --- Predictability: the Blackwell-Hodges convergence strategy ------------------------------------------


def _behind(used_intervention: int, used: int, ratio: tuple[int, int]) -> int:
    """-1 if intervention is behind its share so far, 1 if control is, 0 at the ratio."""
    k, m = ratio
    have, due = used_intervention * (k + m), used * k
    return -1 if have < due else (1 if have > due else 0)


def expected_correct_in_block(size: int, ratio: tuple[int, int]) -> Fraction:
    """Expected correct guesses in one block of `size` by a recruiter who knows every earlier arm and
    always guesses the arm that is behind (at random when neither is)."""
    k, m = ratio
    intervention = size * k // (k + m)
    control = size - intervention

    @cache
    def expected(left_i: int, left_c: int) -> Fraction:
        if left_i + left_c == 0:
            return Fraction(0)
        p_i = Fraction(left_i, left_i + left_c)
        used_i = intervention - left_i
        used = used_i + control - left_c
        behind = _behind(used_i, used, ratio)
        right = p_i if behind < 0 else (1 - p_i if behind > 0 else Fraction(1, 2))
        later = Fraction(0)
        if left_i:
            later += p_i * expected(left_i - 1, left_c)
        if left_c:
            later += (1 - p_i) * expected(left_i, left_c - 1)
        return right + later

    return expected(intervention, control)


def predictability(design: Design) -> Fraction:
    """The long-run share of correct guesses for the design (50 % is unpredictable, 100 % foreseen).

    Blocks are balanced, so at every block's end the counts are at the ratio and the guesser, who does not
    see block boundaries, guesses exactly as if they did. Block sizes are drawn independently, so by
    renewal-reward the share is E[correct per block] / E[block size]."""
    correct = sum((expected_correct_in_block(size, design.ratio) for size in design.block_sizes), Fraction(0))
    return correct / sum(design.block_sizes)


def guess_outcomes(arms: Sequence[str], ratio: tuple[int, int]) -> tuple[float, int]:
    """Correct guesses (a tie counts one half) of the convergence strategy on a real sequence, and its length."""
    correct = 0.0
    used_i = 0
    for used, arm in enumerate(arms):
        behind = _behind(used_i, used, ratio)
        if behind == 0:
            correct += 0.5
        elif (behind < 0) == (arm == INTERVENTION):
            correct += 1
        used_i += arm == INTERVENTION
    return correct, len(arms)
