"""A deterministic, realistic demo retail chain: ``crmkit demo-data DIR`` and :func:`generate`.

About 50 stores in five regions, eight product categories, two years of
member purchases (2024-07-01 to 2026-06-30) that follow a buy-till-you-die
process, three channel systems whose exports overlap and disagree on format,
loyalty points, and three campaigns with randomized control groups. The truth
the exports hide (the number of distinct persons, the purchase-process
parameters, each campaign's true effect, every planted bad row) is written to
``truth.json`` so that crmkit's answers can be checked against it.

>>> from crmkit.demo import generate
>>> truth = generate("data/demo", members=200_000, seed=42)
>>> truth["members"]
200000
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import files, world
from .campaigns import CAMPAIGNS, run
from .exports import Writer
from .people import MINIAPP, ONLINE, POS, people
from .purchases import BTYD, SPEND, lines_of, simulate_orders, spend_rates

__all__ = ["generate", "AS_OF", "PERIOD"]

AS_OF = "2026-06-30"
PERIOD = ("2024-07-01", "2026-06-30")

DEFINITIONS = (
    "Campaign effects are sample average effects over all assigned members (treatment and control, "
    "intention-to-treat): for each member, the outcome with the campaign minus without it, both generated. "
    "Window: [start 00:00, start + attribution_days days). Conversion: at least one sale line in the window. "
    "Revenue: net amount of the member's sale lines in the window minus returns made in the window, in yuan. "
    "Margin: revenue x margin_rate. Incremental revenue and margin: sums over the treatment group.")


def generate(out_dir: str | os.PathLike, members: int = 200_000, seed: int = 42) -> dict:
    """Write the demo chain's exports and ``truth.json`` into ``out_dir``; return the truth.

    Deterministic: the same ``members`` and ``seed`` give the same files.
    """
    if members < 100:
        raise ValueError("members must be at least 100")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = [np.random.default_rng([seed, k]) for k in range(8)]
    stores = world.stores(rng[0])
    folk = people(rng[1], members, stores)
    nu = spend_rates(rng[2], members)
    share = np.array([c[1] for c in world.CATEGORIES.values()])
    favourite = rng[2].choice(len(share), members, p=share / share.sum())
    orders, btyd_counts = simulate_orders(rng[3], folk, nu, stores)
    lines = lines_of(rng[4], orders, favourite, np.arange(len(orders)))
    runs = []
    for k, campaign in enumerate(CAMPAIGNS):
        orders, lines, done = run(rng[5], campaign, seed * 1000 + k + 1, folk, orders, lines, nu, favourite)
        runs.append(done)
    ids = files.order_ids(orders)
    writer = Writer(out, rng[6])
    files.stores_and_products(writer, stores)
    files.members(writer, folk, stores)
    files.transactions(writer, folk, stores, orders, lines, ids)
    files.campaigns(writer, folk, runs, orders, ids)
    files.points(writer, folk, orders, lines, ids)
    files.store_sales(writer, stores, orders, lines)
    truth = {
        "generator": "crmkit.demo", "seed": seed, "as_of": AS_OF,
        "period": {"start": PERIOD[0], "end": PERIOD[1]},
        "members": members,
        "source_records": int(folk.has.sum()),
        "identities": {"pos": int(folk.has[:, POS].sum()), "online": int(folk.has[:, ONLINE].sum()),
                       "miniapp": int(folk.has[:, MINIAPP].sum()), "bound_cards": int(folk.bound_card.sum()),
                       "miniapp_without_phone": int((folk.has[:, MINIAPP] & ~folk.miniapp_phone).sum())},
        "btyd": {"model": "BG/NBD", "time_unit": "days", **BTYD, "alpha_weeks": BTYD["alpha"] / 7, **btyd_counts,
                 "note": "Each buyer's process starts at their first purchase. Members who joined before "
                         "2024-07-01 bought before the exports begin; only members whose first purchase is on or "
                         "after 2024-07-01 have complete histories."},
        "spend": {"model": "Gamma-Gamma", **SPEND, "unit": "yuan per order, before coupons and returns"},
        "campaigns": {r.campaign.campaign_id: r.truth for r in runs},
        "campaign_definitions": DEFINITIONS,
        "transactions": {"orders": len(orders), "lines": len(lines), "return_lines": int(lines.returned.sum())},
        "stores": len(stores.ids),
        "files": dict(writer.rows),
        "bad_rows": writer.bad_rows,
    }
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=2), encoding="utf-8")
    return truth
