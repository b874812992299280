"""The benches report how much of the CPU the host took from this machine while they measured."""

from __future__ import annotations

from service.testing.host import host_ticks, speed_probe_ms, steal_pct


def test_steal_is_the_share_of_ticks_the_hypervisor_took() -> None:
    assert steal_pct((100, 10_000), (130, 10_200)) == 15.0
    assert steal_pct((100, 10_000), (100, 10_000)) is None  # no time passed: no figure
    assert steal_pct(None, (1, 2)) is None


def test_this_machines_ticks_only_grow() -> None:
    before = host_ticks()
    speed_probe_ms()
    after = host_ticks()
    assert before is not None and after is not None  # Linux: /proc/stat is there
    assert after[0] >= before[0] and after[1] > before[1]
    pct = steal_pct(before, after)
    assert pct is not None and 0.0 <= pct <= 100.0
