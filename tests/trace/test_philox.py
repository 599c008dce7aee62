"""The eager Philox (tilefn.trace.philox): the published known-answer vectors, and the conversions."""
import torch

from tilefn.trace import philox


def _words(*values):
    return tuple(torch.tensor(v, dtype=torch.int64) for v in values)


def test_philox4x32_10_known_answers():
    # Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (Random123 kat_vectors: philox4x32 10)
    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for counter, key, expected in cases:
        got = philox.rounds(_words(*counter), _words(*key))
        assert [int(w) for w in got] == list(expected)


def test_seed_and_offsets_fill_key_and_counter_words():
    seed, offset = 0xA4093822 + (0x299F31D0 << 32), torch.tensor([(0x85A308D3 << 32 | 0x243F6A88) - 2**64])
    direct = philox.rounds(_words(0x243F6A88, 0x85A308D3, 0, 0), _words(0xA4093822, 0x299F31D0))
    assert [int(w) for w in philox.philox(torch.tensor(seed), offset)] == [int(w) for w in direct]
    # 32-bit offsets have no high word: -1 as int32 is counter 0xFFFFFFFF, as int64 it fills both words
    low_only = philox.rounds(_words(0xFFFFFFFF, 0, 0, 0), _words(7, 0))
    assert int(philox.philox(torch.tensor(7), torch.tensor([-1], dtype=torch.int32))[0]) == int(low_only[0])
    both = philox.rounds(_words(0xFFFFFFFF, 0xFFFFFFFF, 0, 0), _words(7, 0))
    assert int(philox.philox(torch.tensor(7), torch.tensor([-1]))[0]) == int(both[0])


def test_uniform_maps_words_into_the_unit_interval_by_magnitude():
    words = torch.tensor([0, 1, 2**31 - 1, 2**31, 2**32 - 1], dtype=torch.int64)
    u = philox.uniform(words)
    assert u.dtype == torch.float32
    assert u[0] == 0 and u[4] == 0  # 0 and -1 (as int32) both have magnitude 0
    assert 0 < u[2] < 1 and u[2] == u[3]  # 2**31 - 1 and -2**31 both have magnitude 2**31 - 1
    assert u[1] == torch.tensor(philox.UNIFORM_SCALE, dtype=torch.float32)


def test_randint_rule_and_its_edge_word():
    offsets = torch.arange(10_000)
    words = philox._signed(philox.philox(torch.tensor(3), offsets)[0])
    got = philox.randint(torch.tensor(3), offsets, low=-4, high=9)
    assert got.dtype == torch.int32 and torch.equal(got.long(), -4 + words.abs() % 13)
    assert int(philox.randint(torch.tensor(0), torch.tensor([0]), low=0, high=2**31)[0]) >= 0
