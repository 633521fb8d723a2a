"""The ranker's time-based split of query groups: the latest ``valid_fraction`` of groups validate.

A group's time is the latest time among its rows, so the model is judged on the future it will
serve.  Groups that may not validate (``valid_eligible`` False: impression groups, whose lists an
earlier ranker chose) only train, and only when they are entirely older than the validation
period.  Pure: numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupSplit:
    train_rows: np.ndarray  # row indices, contiguous by group, groups in time order
    valid_rows: np.ndarray
    train_sizes: np.ndarray
    valid_sizes: np.ndarray
    split_time: float


def time_split(group_ids: np.ndarray, times: np.ndarray, valid_fraction: float,
               valid_eligible: np.ndarray | None = None) -> GroupSplit:
    """Order groups by time (ties by group id) and hold out the latest ``valid_fraction`` of them.

    ``valid_eligible`` (per row, constant within a group): only those groups are split; the others
    (e.g. impression groups, whose lists an earlier ranker chose) only ever train, and only when they
    are older than the earliest validation group, so nothing from the validation period trains."""
    if valid_eligible is not None:
        return _eligible_split(np.asarray(group_ids), np.asarray(times, np.float64), valid_fraction,
                               np.asarray(valid_eligible, bool))
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1); got {valid_fraction}")
    keys, inverse = np.unique(np.asarray(group_ids), return_inverse=True)
    if keys.size < 2:
        raise ValueError(f"need at least 2 query groups for a time-based split; got {keys.size}")
    group_time = np.full(keys.size, -np.inf)
    np.maximum.at(group_time, inverse, np.asarray(times, dtype=np.float64))
    rank_of_group = np.empty(keys.size, dtype=np.int64)
    rank_of_group[np.lexsort((np.arange(keys.size), group_time))] = np.arange(keys.size)
    row_rank = rank_of_group[inverse]
    rows = np.lexsort((np.arange(row_rank.size), row_rank))
    n_valid = min(keys.size - 1, max(1, math.ceil(valid_fraction * keys.size)))
    first_valid = keys.size - n_valid
    sizes = np.bincount(row_rank, minlength=keys.size)
    cut = int(sizes[:first_valid].sum())
    split_time = float(np.sort(group_time)[first_valid])
    return GroupSplit(rows[:cut], rows[cut:], sizes[:first_valid], sizes[first_valid:], split_time)


def _eligible_split(group_ids: np.ndarray, times: np.ndarray, valid_fraction: float,
                    eligible: np.ndarray) -> GroupSplit:
    if eligible.shape != group_ids.shape:
        raise ValueError(f"valid_eligible has shape {eligible.shape}; expected {group_ids.shape}")
    if not eligible.any():
        raise ValueError("no validation-eligible group: the ranker needs groups to validate on")
    rows_e = np.flatnonzero(eligible)
    inner = time_split(group_ids[rows_e], times[rows_e], valid_fraction)
    others = np.flatnonzero(~eligible)
    keys, inverse = np.unique(group_ids[others], return_inverse=True)
    group_time = np.full(keys.size, -np.inf)
    np.maximum.at(group_time, inverse, times[others])
    early = group_time < inner.split_time  # only groups entirely before the validation period
    keep = others[early[inverse]]
    if keep.size:  # in time order like the split's own train rows, contiguous by group
        order = np.lexsort((np.arange(keep.size), group_ids[keep], group_time[inverse][early[inverse]]))
        keep = keep[order]
        first_seen = np.r_[True, group_ids[keep][1:] != group_ids[keep][:-1]]
        extra_sizes = np.diff(np.r_[np.flatnonzero(first_seen), keep.size])
    else:
        extra_sizes = np.zeros(0, np.int64)
    return GroupSplit(np.r_[keep, rows_e[inner.train_rows]].astype(np.int64), rows_e[inner.valid_rows],
                      np.r_[extra_sizes, inner.train_sizes].astype(np.int64), inner.valid_sizes, inner.split_time)
