"""Two-tower retrieval model in torch: id embeddings plus metadata, so cold users/items embed too.

user tower: [id emb | age-bucket emb | gender emb | occupation emb] -> MLP -> unit vector
item tower: [id emb | genres (multi-hot -> linear) | year-bucket emb] -> MLP -> unit vector

Trained with a full softmax over the catalogue (logits = cosine / temperature) on the
observed (user, item) pairs.  Ids are replaced by the reserved "unknown" id 0 with
probability ``id_dropout`` during training, so the metadata-only path is trained too:
an item or user never seen in training is embedded from its metadata with id 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from offline.interactions import Interactions
from offline.models.base import F32, I64, FactorModel, load_state, save_state
from offline.models.side_info import ItemFeatures, UserFeatures


@dataclass(frozen=True)
class TwoTowerConfig:
    dim: int = 64
    id_dim: int = 64
    meta_dim: int = 16
    hidden: int = 256
    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    id_dropout: float = 0.2
    temperature: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class _Sizes:
    n_users: int
    n_items: int
    n_genres: int
    n_year_buckets: int
    n_age_buckets: int
    n_genders: int
    n_occupations: int


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, out))


class _Net(nn.Module):
    def __init__(self, cfg: TwoTowerConfig, s: _Sizes) -> None:
        super().__init__()
        self.user_id = nn.Embedding(s.n_users + 1, cfg.id_dim)  # row 0 = unknown user
        self.age = nn.Embedding(s.n_age_buckets, cfg.meta_dim)
        self.gender = nn.Embedding(s.n_genders, cfg.meta_dim)
        self.occupation = nn.Embedding(s.n_occupations, cfg.meta_dim)
        self.item_id = nn.Embedding(s.n_items + 1, cfg.id_dim)  # row 0 = unknown item
        self.genres = nn.Linear(s.n_genres, cfg.meta_dim, bias=False)
        self.year = nn.Embedding(s.n_year_buckets, cfg.meta_dim)
        self.user_mlp = _mlp(cfg.id_dim + 3 * cfg.meta_dim, cfg.hidden, cfg.dim)
        self.item_mlp = _mlp(cfg.id_dim + 2 * cfg.meta_dim, cfg.hidden, cfg.dim)

    def users(self, ids: torch.Tensor, age: torch.Tensor, gender: torch.Tensor, occ: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user_id(ids), self.age(age), self.gender(gender), self.occupation(occ)], dim=1)
        return F.normalize(self.user_mlp(x), dim=1)

    def items(self, ids: torch.Tensor, genres: torch.Tensor, year: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.item_id(ids), self.genres(genres), self.year(year)], dim=1)
        return F.normalize(self.item_mlp(x), dim=1)


class TwoTower(FactorModel):
    name = "two_tower"

    def __init__(self, user_features: UserFeatures, item_features: ItemFeatures, config: TwoTowerConfig = TwoTowerConfig()) -> None:
        super().__init__()
        self.config = config
        self.user_features = user_features
        self.item_features = item_features
        self.sizes = _Sizes(
            n_users=len(user_features),
            n_items=len(item_features),
            n_genres=item_features.genres.shape[1],
            n_year_buckets=int(item_features.year_bucket.max(initial=0)) + 1,
            n_age_buckets=int(user_features.age_bucket.max(initial=0)) + 1,
            n_genders=int(user_features.gender.max(initial=0)) + 1,
            n_occupations=int(user_features.occupation.max(initial=0)) + 1,
        )
        self.net: _Net | None = None

    def fit(self, train: Interactions, progress: bool = False) -> TwoTower:
        cfg = self.config
        if (train.n_users, train.n_items) != (self.sizes.n_users, self.sizes.n_items):
            raise ValueError(
                f"features cover {self.sizes.n_users} users x {self.sizes.n_items} items but the "
                f"interactions are {train.n_users} x {train.n_items}: encode features for the same index tables"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            net = _Net(cfg, self.sizes)
        gen = torch.Generator().manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        uf, itf = _user_tensors(self.user_features), _item_tensors(self.item_features)
        all_items = torch.arange(1, self.sizes.n_items + 1)
        n = len(train)
        net.train()
        for _ in tqdm(range(cfg.epochs), desc="two_tower", disable=not progress, leave=False):
            order = rng.permutation(n)
            for start in range(0, n, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                u = torch.from_numpy(train.users[idx])
                target = torch.from_numpy(train.items[idx])
                uid = _drop(u + 1, cfg.id_dropout, gen)
                iid = _drop(all_items, cfg.id_dropout, gen)
                ue = net.users(uid, uf[0][u], uf[1][u], uf[2][u])
                ie = net.items(iid, *itf)
                loss = F.cross_entropy(ue @ ie.T / cfg.temperature, target)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        net.eval()
        self.net = net
        self._refresh_factors()
        return self

    def _refresh_factors(self) -> None:
        self._user = torch.from_numpy(self.embed_users(self.user_features, np.arange(self.sizes.n_users)))
        self._item = torch.from_numpy(self.embed_items(self.item_features, np.arange(self.sizes.n_items)))

    def _net(self) -> _Net:
        if self.net is None:
            raise RuntimeError("TwoTower is not fitted: call fit(train) or TwoTower.load(path) first")
        return self.net

    def embed_items(self, features: ItemFeatures, item_idx: I64 | None = None) -> F32:
        """Unit vectors for items; ``item_idx=None`` (or -1 entries) means never seen: metadata only."""
        ids = _ids(item_idx, len(features), self.sizes.n_items)
        g, y = _item_tensors(features)
        with torch.no_grad():
            return self._net().items(ids, g, y).numpy().astype(np.float32)

    def embed_users(self, features: UserFeatures, user_idx: I64 | None = None) -> F32:
        """Unit vectors for users; ``user_idx=None`` (or -1 entries) means never seen: metadata only."""
        ids = _ids(user_idx, len(features), self.sizes.n_users)
        a, g, o = _user_tensors(features)
        with torch.no_grad():
            return self._net().users(ids, a, g, o).numpy().astype(np.float32)

    def save(self, path: Path) -> None:
        tensors = {f"net.{k}": v for k, v in self._net().state_dict().items()}
        tensors |= {
            "user.age": torch.from_numpy(self.user_features.age_bucket),
            "user.gender": torch.from_numpy(self.user_features.gender),
            "user.occupation": torch.from_numpy(self.user_features.occupation),
            "item.genres": torch.from_numpy(self.item_features.genres),
            "item.year": torch.from_numpy(self.item_features.year_bucket),
        }
        save_state(path, self.name, {"config": asdict(self.config), "sizes": asdict(self.sizes)}, tensors)

    @classmethod
    def load(cls, path: Path) -> TwoTower:
        meta, t = load_state(path, cls.name)
        uf = UserFeatures(t["user.age"].numpy(), t["user.gender"].numpy(), t["user.occupation"].numpy())
        itf = ItemFeatures(t["item.genres"].numpy(), t["item.year"].numpy())
        model = cls(uf, itf, TwoTowerConfig(**meta["config"]))
        model.sizes = _Sizes(**meta["sizes"])
        net = _Net(model.config, model.sizes)
        net.load_state_dict({k.removeprefix("net."): v for k, v in t.items() if k.startswith("net.")})
        net.eval()
        model.net = net
        model._refresh_factors()
        return model


def _drop(ids: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    if p <= 0.0:
        return ids
    return torch.where(torch.rand(ids.shape, generator=gen) < p, torch.zeros_like(ids), ids)


def _ids(idx: I64 | None, n: int, n_known: int) -> torch.Tensor:
    if idx is None:
        return torch.zeros(n, dtype=torch.int64)
    arr = np.asarray(idx, dtype=np.int64)
    if len(arr) != n:
        raise ValueError(f"got {len(arr)} indices for {n} feature rows")
    known = (arr >= 0) & (arr < n_known)
    return torch.from_numpy(np.where(known, arr + 1, 0))


def _user_tensors(f: UserFeatures) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.from_numpy(f.age_bucket), torch.from_numpy(f.gender), torch.from_numpy(f.occupation)


def _item_tensors(f: ItemFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.asarray(f.genres, dtype=np.float32)), torch.from_numpy(f.year_bucket)
