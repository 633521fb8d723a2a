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
