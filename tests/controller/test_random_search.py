"""Random search: valid, uniform, and the state is just counters."""

import collections

from controller import RandomSearch
from search_space import SearchSpace


def test_ten_thousand_samples_are_valid_and_distinct(encoding):
    c = RandomSearch(encoding, seed=0)
    space = SearchSpace()
    seen = set()
    for _ in range(10_000):
        p = c.propose()
        assert space.contains(p.architecture)
        seen.add(p.architecture)
        c.feedback(p, 0.0)
    assert len(seen) == 10_000  # about 1e40 members: a repeat would mean broken seeding
    assert c.stats()["results"] == 10_000


def test_first_level_follows_the_allocation(encoding):
    """Uniform over level sequences: block 2 takes base level L in proportion to L's count."""
    c = RandomSearch(encoding, seed=1)
    counts = collections.Counter(c.propose().architecture.blocks[0].level for _ in range(3000))
    # Allocation L2:1, L3:1, L4:3, L5:3, L6:1, L7:1 (10 blocks), then a shift of -1..+2; L4 and L5 lead.
    assert counts[4] + counts[5] > counts[2] + counts[3]
    assert set(counts) <= set(range(2, 8))


def test_learns_nothing_and_the_state_is_counters(encoding):
    c = RandomSearch(encoding, seed=2)
    c.feedback(c.propose(), 1.0)
    state = c.get_state()
    assert state["algorithm_state"] == {}
    assert state["next_id"] == 1 and state["policy_version"] == 0
