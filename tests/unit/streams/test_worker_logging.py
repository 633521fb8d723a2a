"""Faust's worker leaves the root logger at DEBUG; the worker puts it back at its --loglevel."""

from __future__ import annotations

import io
import logging

import faust

from streams.worker import restore_root_level


def test_root_logger_is_back_at_the_worker_level_after_faust_setup() -> None:
    root = logging.root
    saved = (root.level, list(root.handlers))
    try:
        app = faust.App("t-worker-logging", broker="kafka://127.0.0.1:1")
        worker = faust.Worker(app, loglevel="warn", redirect_stdouts=False, stdout=io.StringIO(),
                              stderr=io.StringIO())
        worker._setup_logging()  # what the worker does when it first starts
        # Faust's start-up spinner: every debug call in faust/aiokafka would build a record
        assert logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
        restore_root_level("warn")
        assert root.level == logging.WARNING
        assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("aiokafka.producer").isEnabledFor(logging.INFO)
        restore_root_level("info")
        assert logging.getLogger("streamrec.worker").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
