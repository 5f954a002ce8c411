"""Binary markets and their whole life: registration, splits, CLOB trades, merges, gifts,
resolution, redemptions, deposits and withdrawals — plus the PnL bookkeeping of every position.

Why market-local: every piece of state a market touches (its two position tokens, the cash its
traders put in for it) lives inside the market. A trader's cash is a per-(wallet, market)
sub-ledger funded by a bridge deposit right before it is needed, so the wallet's real USDC
balance (the sum of its sub-ledgers) can never go negative whatever order the markets are
interleaved in. That makes any day of any world generable on its own: a day's logs are the
events of the markets alive that day (created in the previous LOOKBACK_DAYS days) plus the
day's own noise. `full` worlds are therefore generated lazily, per day, in bounded memory.

Win rate (per position = per (wallet, token), counted when the position is closed — amount 0 —
or settled by a resolution; a win is realized PnL > 0). It is steered, not left to chance:
- every taker entry draws a target outcome, win with probability WIN_TARGET (0.43);
- a taker that holds to resolution buys the *winning* token if its target is a win and the
  losing one otherwise (bought at <= 0.98, so holding the winner always makes money and holding
  the loser always loses);
- a taker that exits sells everything later at entry +1..6 cents (win) or -1..6 cents (loss);
- the remaining positions are makers (bought at 0.50 by splits, sold on both sides: about one
  winner and one loser per maker) and takers who bought from an exiting taker (their side is
  whatever the exit sold: ~50 %).
The mix lands at ~44-45 % (tests assert 40-50 % for `demo`).

Truth PnL follows DESIGN §6.9 exactly with the prices the world traded at: buy
avg=(avg*amt+p*q)/(amt+q); sell realized += min(q,amt)*(p-avg); split = buy both at 0.50;
merge = sell both at 0.50; redemption = sell at payout (1 or 0); positions still held (in the
bookkeeping) when their condition resolved are settled at the payout. Gifts (wallet-to-wallet
token transfers with no cash leg) have no price and do not enter PnL: the sender's bookkeeping
amount is unchanged and the receiver (a "cold" wallet that never trades) gets no position.
Quantities and cash are exact ints; avg/realized are float64 (realized_pnl is rounded to
micro-USDC at the end), so a rebuild should compare PnL with a small tolerance.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import abi
from .abi import addr_topic, data_uint_arrays, data_words, uint_topic

if TYPE_CHECKING:  # pragma: no cover
    from .world import World

# log kinds: what the ground truth says a log is (independent of any eth_getLogs filter)
K_NOISE, K_USDC_PM, K_USDC_OTHER, K_CTF, K_RES, K_REG = 0, 1, 2, 3, 4, 5

BLOCKS_PER_DAY = 43_200
LIFE_DAYS_WEIGHTS = [15, 25, 20, 15, 10, 10, 5]  # whole days of life before the partial day
REDEEM_TAIL = 20_000  # blocks after resolution in which holders redeem
WITHDRAW_DELAY = 3_000  # a withdrawal follows a wallet's last event in the market within this
LOOKBACK_DAYS = len(LIFE_DAYS_WEIGHTS) + 1  # a market created d-LOOKBACK can still emit on d
WIN_TARGET = 0.43
HALF = 0.5
UMA_ORACLE = "0x6a9d222616c90fca5754cd1333cfd9b7fb6a4f74"
ZERO = abi.ZERO_ADDRESS
ZERO_T = abi.ZERO_TOPIC
T_TRANSFER = abi.TOPIC_TRANSFER
T_SINGLE = abi.TOPIC_TRANSFER_SINGLE
T_BATCH = abi.TOPIC_TRANSFER_BATCH


def _h256(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=32).digest(), "big")


def usdc(coll: str, frm: str, to: str, value: int, kind: int) -> tuple:
    return (coll, (T_TRANSFER, addr_topic(frm), addr_topic(to)), data_words(value), kind)


def single(ctf: str, op: str, frm: str, to: str, tid: int, value: int) -> tuple:
    return (ctf, (T_SINGLE, addr_topic(op), addr_topic(frm), addr_topic(to)), data_words(tid, value), K_CTF)


def batch(ctf: str, op: str, frm: str, to: str, ids: list[int], values: list[int]) -> tuple:
    return (ctf, (T_BATCH, addr_topic(op), addr_topic(frm), addr_topic(to)), data_uint_arrays(ids, values), K_CTF)


@dataclass
class MarketParams:
    """Everything about a market that is decided up front (cheap, hash-derived)."""

    mid: int  # global id: day * 1000 + j
    day: int
    weight: float
    b_create: int
    b_resolve: int
    hard_end: int  # no event of this market after this block (world end or collateral switch)
    winner: int
    p0: float
    condition_id: int
    question_id: int
    tokens: tuple[int, int]
    exchange: str
    collateral: str
    ctf: str
    hour_mass: dict[int, float] = field(default_factory=dict)  # day -> share of the day's weight

    @property
    def last_block(self) -> int:
        """No event of this market after this block (redemptions, then withdrawals, end by it)."""
        return min(self.hard_end, self.b_resolve + REDEEM_TAIL + WITHDRAW_DELAY + 10)


class Position:
    """Average-cost position of one (wallet, token). Quantities in micro-shares (int), prices in
    USDC per share (float), realized in micro-USDC (float64; rounded when exported)."""

    __slots__ = ("bought", "sold", "amt", "avg", "realized")

    def __init__(self) -> None:
        self.bought = 0
        self.sold = 0
        self.amt = 0
        self.avg = 0.0
        self.realized = 0.0

    def buy(self, q: int, p: float) -> None:
        self.avg = (self.avg * self.amt + p * q) / (self.amt + q)
        self.amt += q
        self.bought += q

    def sell(self, q: int, p: float) -> None:
        self.realized += min(q, self.amt) * (p - self.avg)
        self.amt = max(0, self.amt - q)
        self.sold += q


@dataclass
class MarketResult:
    """Events of one market: txs as (block, seq, logs) sorted by (block, seq); PnL rows."""

    params: MarketParams
    txs: list[tuple[int, int, list[tuple]]]
    tx_blocks: list[int]
    pnl: list[dict]
    resolved: bool
    split_sets: int = 0


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < 40:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
    return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))


class MarketSim:
    """Simulates one market from creation to the end of its redemption tail (or world end)."""

    def __init__(self, world: "World", mp: MarketParams):
        self.w = world
        self.mp = mp
        self.rng = random.Random(_h256(world.seed, "sim", mp.mid))
        self.txs: list[tuple[int, int, list[tuple]]] = []
        self.seq = 0
        self.book: dict[tuple[str, int], Position] = {}
        self.cash: dict[str, int] = {}  # per-wallet sub-ledger for this market
        self.hold: dict[tuple[str, int], int] = {}  # actual token balances
        self.used: set[int] = set()
        self.p0 = mp.p0
        self.split_sets = 0

    # -- helpers -----------------------------------------------------------------------------
    def emit(self, block: int, logs: list[tuple]) -> None:
        self.txs.append((block, self.seq, logs))
        self.seq += 1

    def pos(self, wallet: str, k: int) -> Position:
        p = self.book.get((wallet, k))
        if p is None:
            p = self.book[(wallet, k)] = Position()
        return p

    def new_wallet(self) -> str:
        pool = self.w.density.wallet_pool
        for _ in range(50):
            i = int(pool * (self.rng.random() ** 1.6))  # some wallets are much more active
            if i not in self.used:
                self.used.add(i)
                return self.w.wallet(i)
        i = pool + self.rng.randrange(10**9)
        return self.w.wallet(i)

    def cold_wallet(self) -> str:
        return self.w.wallet(10**10 + self.mp.mid * 1000 + self.rng.randrange(1000))

    def deposit(self, block: int, wallet: str, need: int) -> None:
        """Bridge mint so the wallet's sub-ledger for this market covers `need`."""
        have = self.cash.get(wallet, 0)
        if have >= need:
            return
        amt = (need - have) + int(self.rng.random() * 50) * 1_000_000
        amt = -(-amt // 1_000_000) * 1_000_000
        self.emit(block, [usdc(self.mp.collateral, ZERO, wallet, amt, K_USDC_OTHER)])
        self.cash[wallet] = have + amt

    def split(self, block: int, wallet: str, sets: int) -> None:
        mp = self.mp
        self.deposit(block, wallet, sets)
        self.cash[wallet] -= sets
        logs = [
            usdc(mp.collateral, wallet, mp.ctf, sets, K_USDC_PM),
            batch(mp.ctf, wallet, ZERO, wallet, list(mp.tokens), [sets, sets]),
            (mp.ctf, (abi.TOPIC_POSITION_SPLIT, addr_topic(wallet), ZERO_T, uint_topic(mp.condition_id)),
             data_words(int(mp.collateral, 16), 0x60, sets, 2, 1, 2), K_NOISE),
        ]
        self.emit(block, logs)
        self.split_sets += sets
        for k in (0, 1):
            self.pos(wallet, k).buy(sets, HALF)
            self.hold[(wallet, k)] = self.hold.get((wallet, k), 0) + sets

    def merge(self, block: int, wallet: str, sets: int) -> None:
        mp = self.mp
        logs = [
            batch(mp.ctf, wallet, wallet, ZERO, list(mp.tokens), [sets, sets]),
            usdc(mp.collateral, mp.ctf, wallet, sets, K_USDC_PM),
            (mp.ctf, (abi.TOPIC_POSITIONS_MERGE, addr_topic(wallet), ZERO_T, uint_topic(mp.condition_id)),
             data_words(int(mp.collateral, 16), 0x60, sets, 2, 1, 2), K_NOISE),
        ]
        self.emit(block, logs)
        self.split_sets -= sets
        self.cash[wallet] = self.cash.get(wallet, 0) + sets
        for k in (0, 1):
            self.pos(wallet, k).sell(sets, HALF)
            self.hold[(wallet, k)] -= sets

    def price_cents(self, k: int) -> int:
        c = min(98, max(2, int(round(self.p0 * 100))))
        return c if k == 0 else 100 - c

    def split_qty(self, q: int, parts: int) -> list[int]:
        units = q // 10_000
        parts = max(1, min(parts, units))
        cuts = sorted(self.rng.sample(range(1, units), parts - 1)) if parts > 1 else []
        bounds = [0] + cuts + [units]
        return [(b - a) * 10_000 for a, b in zip(bounds, bounds[1:])]

    # -- trades ------------------------------------------------------------------------------
    def trade(self, block: int, taker: str, side_buy: bool, k: int, cents: int,
              counterparties: list[tuple[str, int]]) -> None:
        """One CLOB settlement tx through the exchange. counterparties: (wallet, qty)."""
        mp = self.mp
        ex, coll, ctf, tid = mp.exchange, mp.collateral, mp.ctf, mp.tokens[k]
        price = cents / 100
        q = sum(x for _, x in counterparties)
        cash = q * cents // 100
        logs: list[tuple] = []
        if side_buy:  # taker pays cash, makers deliver tokens
            logs.append(usdc(coll, taker, ex, cash, K_USDC_PM))
            for m, qi in counterparties:
                ci = qi * cents // 100
                logs.append(single(ctf, ex, m, ex, tid, qi))
                logs.append(usdc(coll, ex, m, ci, K_USDC_PM))
                logs.append(self._order_filled(m, taker, tid, qi, ci))
                self.hold[(m, k)] -= qi
                self.cash[m] = self.cash.get(m, 0) + ci
                self.pos(m, k).sell(qi, price)
            logs.append(single(ctf, ex, ex, taker, tid, q))
            self.cash[taker] -= cash
            self.hold[(taker, k)] = self.hold.get((taker, k), 0) + q
            self.pos(taker, k).buy(q, price)
        else:  # taker delivers tokens, makers pay cash
            logs.append(single(ctf, ex, taker, ex, tid, q))
            for m, qi in counterparties:
                ci = qi * cents // 100
                logs.append(usdc(coll, m, ex, ci, K_USDC_PM))
                logs.append(single(ctf, ex, ex, m, tid, qi))
                logs.append(self._order_filled(m, taker, tid, ci, qi))
                self.cash[m] -= ci
                self.hold[(m, k)] = self.hold.get((m, k), 0) + qi
                self.pos(m, k).buy(qi, price)
            logs.append(usdc(coll, ex, taker, cash, K_USDC_PM))
            self.cash[taker] = self.cash.get(taker, 0) + cash
            self.hold[(taker, k)] -= q
            self.pos(taker, k).sell(q, price)
        logs.append((ex, (abi.TOPIC_ORDERS_MATCHED, uint_topic(self.rng.getrandbits(254)), addr_topic(taker)),
                     data_words(0, tid, q, cash), K_NOISE))
        self.emit(block, logs)

    def _order_filled(self, maker: str, taker: str, tid: int, a: int, b: int) -> tuple:
        oh = self.rng.getrandbits(255)
        return (self.mp.exchange, (abi.TOPIC_ORDER_FILLED, uint_topic(oh), addr_topic(maker), addr_topic(taker)),
                data_words(tid, 0, a, b, 0), K_NOISE)

    # -- the life of the market ----------------------------------------------------------------
    def run(self) -> MarketResult:
        w, mp, rng = self.w, self.mp, self.rng
        end = mp.hard_end
        # creation: condition prepared on the CTF, both tokens registered on the exchange
        self.emit(mp.b_create, [
            (mp.ctf, (abi.TOPIC_CONDITION_PREPARATION, uint_topic(mp.condition_id), addr_topic(UMA_ORACLE),
                      uint_topic(mp.question_id)), data_words(2), K_NOISE)])
        t0, t1 = mp.tokens
        cid = uint_topic(mp.condition_id)
        self.emit(mp.b_create, [
            (mp.exchange, (abi.TOPIC_TOKEN_REGISTERED, uint_topic(t0), uint_topic(t1), cid), "0x", K_REG),
            (mp.exchange, (abi.TOPIC_TOKEN_REGISTERED, uint_topic(t1), uint_topic(t0), cid), "0x", K_REG),
        ])
        makers = [self.new_wallet() for _ in range(1 + rng.randrange(3))]
        first = min(end, mp.b_create + 2 + rng.randrange(40))
        self.split(first, makers[0], (200 + rng.randrange(2000)) * 1_000_000)

        slots = w.market_slots(mp, rng, first + 1)
        exits: dict[int, list[tuple[str, int, int, bool]]] = {}
        holders: list[tuple[str, int]] = []  # (wallet, k) that plan to hold to resolution
        done_wallets: list[tuple[int, str]] = []  # (block, wallet) for withdrawals
        last = len(slots) - 1
        for i, b in enumerate(slots):
            progress = (b - mp.b_create) / max(1, mp.b_resolve - mp.b_create)
            target = 0.97 if mp.winner == 0 else 0.03
            self.p0 += rng.gauss(0, 0.012) + (target - self.p0) * 0.08 * progress**3
            self.p0 = min(0.98, max(0.02, self.p0))
            pending = exits.pop(i, None)
            if pending:
                for taker, k, entry, win in pending:
                    self._exit(b, taker, k, entry, win, makers, exits, holders, i, last, slots, done_wallets)
                continue
            r = rng.random()
            if r < 0.04 and makers:
                m = rng.choice(makers)
                sets = min(self.hold.get((m, 0), 0), self.hold.get((m, 1), 0)) // 2 // 10_000 * 10_000
                if sets >= 1_000_000:
                    self.merge(b, m, sets)
                    continue
            elif r < 0.055 and holders:
                hw, hk = holders[rng.randrange(len(holders))]
                have = self.hold.get((hw, hk), 0)
                g = int(have * rng.uniform(0.1, 0.5)) // 10_000 * 10_000
                if g >= 10_000:
                    cold = self.cold_wallet()
                    self.emit(b, [single(mp.ctf, hw, hw, cold, mp.tokens[hk], g)])
                    self.hold[(hw, hk)] = have - g
                    continue
            self._entry(b, makers, exits, holders, i, last, slots)

        # resolution
        resolved = mp.b_resolve <= end
        if resolved:
            payouts = [1, 0] if mp.winner == 0 else [0, 1]
            self.emit(mp.b_resolve, [
                (mp.ctf, (abi.TOPIC_CONDITION_RESOLUTION, cid, addr_topic(UMA_ORACLE), uint_topic(mp.question_id)),
                 abi.data_resolution(2, payouts), K_RES)])
            self._redemptions(makers, done_wallets)
        for b, wallet in done_wallets:
            bal = self.cash.get(wallet, 0)
            if bal > 0 and rng.random() < 0.4:
                wb = b + 5 + rng.randrange(WITHDRAW_DELAY)
                if wb <= end:
                    self.emit(wb, [usdc(mp.collateral, wallet, ZERO, bal, K_USDC_OTHER)])
                    self.cash[wallet] = 0
        return self._result(resolved)

    def _entry(self, b, makers, exits, holders, i, last, slots, taker=None, k=None, cents=None, q=None,
               counter=None) -> None:
        rng, mp = self.rng, self.mp
        hold_plan = i >= last or rng.random() < 0.45
        win = rng.random() < WIN_TARGET
        if k is None:
            if hold_plan:
                k = mp.winner if win else 1 - mp.winner
            else:
                k = 0 if rng.random() < self.p0 else 1
        if cents is None:
            cents = self.price_cents(k)
        if taker is None:
            taker = self.new_wallet()
        if q is None:
            q = max(10_000, int(math.exp(rng.gauss(3.5, 1.3)) * 1_000_000) // 10_000 * 10_000)
            q = min(q, 20_000 * 1_000_000)
        if counter is None:
            fills = self.split_qty(q, rng.choice((1, 1, 1, 2, 2, 3)))
            counter = []
            planned: dict[str, int] = {}  # what earlier fills of this tx already take from a maker
            for j, qi in enumerate(fills):
                m = makers[j % len(makers)]
                have = self.hold.get((m, k), 0) - planned.get(m, 0)
                planned[m] = planned.get(m, 0) + qi
                if have < qi:
                    need = qi - have
                    sets = max(need, (100 + rng.randrange(1000)) * 1_000_000)
                    sets = -(-sets // 1_000_000) * 1_000_000
                    self.split(b, m, sets)
                counter.append((m, qi))
            # the same maker twice in one tx would be one fill on chain
            merged: dict[str, int] = {}
            for m, qi in counter:
                merged[m] = merged.get(m, 0) + qi
            counter = list(merged.items())
        cash = q * cents // 100
        dep_block = max(mp.b_create + 1, b - 1 - int(rng.random() * 300))
        self.deposit(dep_block, taker, cash)
        self.trade(b, taker, True, k, cents, counter)
        if hold_plan:
            holders.append((taker, k))
        else:
            j = rng.randrange(i + 1, last + 1)
            exits.setdefault(j, []).append((taker, k, cents, win))

    def _exit(self, b, taker, k, entry, win, makers, exits, holders, i, last, slots, done_wallets) -> None:
        rng = self.rng
        q = self.hold.get((taker, k), 0)
        if q < 10_000:
            return
        d = 1 + rng.randrange(6)
        cents = min(99, entry + d) if win else max(1, entry - d)
        if rng.random() < 0.3 and i < last:
            # another taker takes the other side (and becomes a position of its own)
            buyer = self.new_wallet()
            cash = q * cents // 100
            self.deposit(max(self.mp.b_create + 1, b - 1 - rng.randrange(300)), buyer, cash)
            self.trade(b, taker, False, k, cents, [(buyer, q)])
            if rng.random() < 0.5:
                holders.append((buyer, k))
            else:
                j = rng.randrange(i + 1, last + 1)
                exits.setdefault(j, []).append((buyer, k, cents, rng.random() < WIN_TARGET))
        else:
            fills = self.split_qty(q, rng.choice((1, 1, 2)))
            counter: dict[str, int] = {}
            for j, qi in enumerate(fills):
                m = makers[(j + i) % len(makers)]
                counter[m] = counter.get(m, 0) + qi
            for m, qi in counter.items():
                self.deposit(b, m, qi * cents // 100)  # tops the maker's sub-ledger up if short
            self.trade(b, taker, False, k, cents, list(counter.items()))
        done_wallets.append((b, taker))

    def _redemptions(self, makers, done_wallets) -> None:
        mp, rng = self.mp, self.rng
        end = mp.hard_end
        wallets: dict[str, list[int]] = {}
        for (wallet, k), amt in self.hold.items():
            if amt > 0:
                wallets.setdefault(wallet, []).append(k)
        for wallet in sorted(wallets):
            if rng.random() >= 0.85:
                continue
            b = mp.b_resolve + 5 + rng.randrange(REDEEM_TAIL)
            if b > end:
                continue
            logs = []
            payout = 0
            for k in sorted(wallets[wallet]):
                amt = self.hold[(wallet, k)]
                logs.append(single(mp.ctf, wallet, wallet, ZERO, mp.tokens[k], amt))
                self.hold[(wallet, k)] = 0
                pay = 1 if k == mp.winner else 0
                self.pos(wallet, k).sell(amt, float(pay))
                payout += amt * pay
            if payout:
                logs.append(usdc(mp.collateral, mp.ctf, wallet, payout, K_USDC_PM))
                self.cash[wallet] = self.cash.get(wallet, 0) + payout
            logs.append((mp.ctf, (abi.TOPIC_PAYOUT_REDEMPTION, addr_topic(wallet), addr_topic(mp.collateral), ZERO_T),
                         data_words(mp.condition_id, 0x60, payout, 2, 1, 2), K_NOISE))
            self.emit(b, logs)
            done_wallets.append((b, wallet))

    def _result(self, resolved: bool) -> MarketResult:
        mp = self.mp
        rows = []
        for (wallet, k), p in self.book.items():
            settled = resolved and p.amt > 0
            realized = p.realized
            if settled:
                realized += p.amt * ((1.0 if k == mp.winner else 0.0) - p.avg)
            rows.append({
                "wallet": wallet,
                "token_id": str(mp.tokens[k]),
                "bought": p.bought,
                "sold": p.sold,
                "amount_held": p.amt,
                "avg_price": p.avg,
                "realized_pnl": int(round(realized)),
                "settled": settled,
                "resolved": resolved,
            })
        self.txs.sort(key=lambda t: (t[0], t[1]))
        return MarketResult(mp, self.txs, [t[0] for t in self.txs], rows, resolved, self.split_sets)
