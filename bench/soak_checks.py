"""The soak's criteria, checked on its result (pure): each one true or false, and whether all hold.

``bench soak`` writes these as ``checks`` in its JSON, so a run says itself whether it passed:

* ``worker_rss_under_10pct`` / ``api_rss_under_10pct``: RSS growth from minute 1 to the end below 10 %;
* ``dead_letters_are_the_hostile``: nothing but hostile records was dead-lettered, and every hostile
  record was, unless the topic's retention deleted it before the worker read it;
* ``nothing_unaccounted``: after the drain every published record was applied, dead-lettered or
  deleted by the retention before it was read (``bench.soak_ledger``): nothing vanished silently;
* ``nothing_lost_to_retention``: and none was deleted unread (a worker far behind loses records to a
  short topic retention);
* ``worker_counted_the_losses``: the worker's own count of records deleted before it read them
  (``stats`` ``lost_to_retention``) equals the soak's;
* ``kept_up``: at most ``KEPT_UP_S`` seconds of the published rate were queued when the load stopped.
  A worker behind from the first seconds holds its backlog at minute 1 already, so its RSS can look
  flat: the RSS criteria only mean something for a run that kept up;
* ``no_request_errors``.
"""

from __future__ import annotations

from typing import Mapping

RSS_LIMIT = 0.10
KEPT_UP_S = 2.0


def soak_checks(result: Mapping[str, object]) -> dict[str, bool]:
    """The criteria above from a ``run_soak`` result, and ``passed``: all of them."""
    def num(key: str) -> float:
        v = result.get(key)
        return float(v) if isinstance(v, (int, float)) else float("nan")

    checks = {
        "worker_rss_under_10pct": num("worker_rss_growth") < RSS_LIMIT,
        "api_rss_under_10pct": num("api_rss_growth") < RSS_LIMIT,
        "dead_letters_are_the_hostile": (num("dead_letters") == num("hostile_dead_lettered")
                                         and num("hostile_dead_lettered") + num("hostile_lost_to_retention")
                                         == num("hostile_injected")),
        "nothing_unaccounted": num("unaccounted_after_drain") == 0,
        "nothing_lost_to_retention": num("lost_to_retention_records") == 0,
        "worker_counted_the_losses": num("worker_lost_to_retention_records") == num("lost_to_retention_records"),
        "kept_up": num("lag_events_at_end") <= KEPT_UP_S * num("target_events_per_s"),
        "no_request_errors": num("request_errors") == 0,
    }
    checks["passed"] = all(checks.values())
    return checks
