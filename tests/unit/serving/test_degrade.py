from serving.degrade import Breaker


def test_breaker_opens_at_once_when_down_and_after_three_slow_calls() -> None:
    t = [0.0]
    b = Breaker(cooldown_s=1.0, clock=lambda: t[0])
    b.failure(slow=True)
    b.failure(slow=True)
    assert b.allow()  # two slow round trips: only those requests degrade
    b.failure(slow=True)
    assert not b.allow()
    t[0] = 1.5
    assert b.allow()  # half-open: one probe
    b.success()
    b.failure()  # unreachable: open at once
    assert not b.allow()
    t[0] = 3.0
    b.success()
    assert b.allow() and b.failures == 0


def test_slowness_opens_the_breaker_for_the_shorter_slow_cooldown() -> None:
    t = [0.0]
    b = Breaker(cooldown_s=1.0, slow_cooldown_s=0.2, clock=lambda: t[0])
    for _ in range(3):
        b.failure(slow=True)
    assert not b.allow()
    t[0] = 0.19
    assert not b.allow()
    t[0] = 0.21
    assert b.allow()  # half-open after the slow cooldown, long before the down cooldown
    b.failure(slow=True)  # the probe overran too: open again, for the slow cooldown
    assert not b.allow()
    t[0] = 0.42
    assert b.allow()
    b.failure()  # unreachable: the down cooldown
    t[0] = 1.0
    assert not b.allow()
    t[0] = 1.43
    assert b.allow()
