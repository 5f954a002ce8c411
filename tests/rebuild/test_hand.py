"""The rebuild on a hand-built dataset whose PnL is computed by hand (rounding rule in
console/engine/rebuild.py)."""

from console.engine.rebuild import SUCCESS_LINE, rebuild
from console.engine.gates import run_gates
from console.settings import GateThresholds

from .builder import E6, EXCHANGE, PROFILE, Chain, addr

A, B, C, D, F = (addr(0xA0 + i) for i in range(5))
M, G, H, J = (addr(0xB0 + i) for i in range(4))
T0, T1, T2, T3, T4, T5 = 1001, 1002, 2001, 2002, 3001, 3002
C1, C2, C3 = "0x" + "c1" * 32, "0x" + "c2" * 32, "0x" + "c3" * 32
WIDE = GateThresholds(win_rate_min=0.0, win_rate_max=1.0, high_confidence_strict=0.7)


def hand_chain() -> Chain:
    ch = Chain()
    ch.register(T0, T1, C1)
    ch.register(T2, T3, C2)
    ch.split(B, (T0, T1), 200 * E6)            # B: T0, T1 200 @ 0.50
    ch.trade(A, B, T0, 100 * E6, 40 * E6)      # A buys 100 @ 0.40; B realizes -10
    ch.trade(A, B, T0, 50 * E6, 30 * E6)       # A buys 50 @ 0.60 -> avg 466666; B +5
    ch.trade(C, A, T0, 30 * E6, 21 * E6)       # A sells 30 @ 0.70: +7000020
    ch.resolve(C1, [1, 0])                     # T0 wins
    ch.redeem(A, T0, 120 * E6, 120 * E6)       # A's winning redemption (already settled)
    ch.redeem(B, T1, 200 * E6, 0)              # B's losing redemption: REDEEM at price 0
    ch.gift(C, D, T0, 10 * E6)                 # gift: TRANSFER, LOW
    ch.split(D, (T2, T3), 10 * E6)
    ch.merge(D, (T2, T3), 4 * E6)
    # F buys T2 from D in two fills in one tx: MEDIUM for both sides
    ch.tx()
    ch.usdc(F, EXCHANGE, 950_000)
    ch.usdc(EXCHANGE, D, 600_000)
    ch.usdc(EXCHANGE, D, 350_000)
    ch.single(D, EXCHANGE, T2, 2 * E6)
    ch.single(D, EXCHANGE, T2, 1 * E6)
    ch.single(EXCHANGE, F, T2, 2 * E6)
    ch.single(EXCHANGE, F, T2, 1 * E6)
    # half-micro-USDC results, rounded half to even at the end (as Python's round())
    ch.register(T4, T5, C3)
    ch.split(M, (T4, T5), 100 * E6)
    ch.trade(G, M, T4, 2, 1)      # G buys 2 micro-shares @ 0.5
    ch.trade(M, G, T4, 1, 1)      # sells 1 @ 1.0: +0.5 -> 0
    ch.trade(H, M, T4, 4, 2)      # H buys 4 @ 0.5
    ch.trade(M, H, T4, 3, 3)      # sells 3 @ 1.0: +1.5 -> 2
    ch.trade(J, M, T4, 10, 5)     # J buys 10 @ 0.5
    ch.trade(M, J, T4, 5, 5)      # sells 5 @ 1.0: +2.5 -> 2
    return ch


EXPECTED = {  # (wallet, token): (realized micro-USDC, amount, all_high)
    (A, T0): (7_000_000 + 64_000_000, 0, True),   # exact: avg 0.4666.., sold 30 @0.70, settled 120 @1
    (B, T0): (-10 * E6 + 5 * E6 + 25 * E6, 0, True),
    (B, T1): (-100 * E6, 0, True),
    (C, T0): (9 * E6, 0, False),               # the gift makes it not all-HIGH
    (D, T3): (0, 6 * E6, True),
    (F, T2): (0, 3 * E6, False),
}


async def test_hand_built_rebuild(store, data_dir):
    await hand_chain().load(store)
    seen = []
    out = await rebuild(store, PROFILE, WIDE, data_dir, run_stats={"calls": 3},
                        on_step=seen.append, run_id="t1")
    assert out.ok, out.reason
    assert out.exit_code == 0
    flows = await store.query_dicts(
        "SELECT wallet, token_id, kind, confidence, price_e6, token_delta, usdc_delta "
        "FROM {db}.net_flows ORDER BY block_number, wallet, token_id")
    kinds = {(f["wallet"], f["token_id"], f["kind"], f["confidence"]) for f in flows}
    assert (A, T0, "BUY", "HIGH") in kinds and (C, T0, "BUY", "HIGH") in kinds
    assert (B, T0, "SPLIT", "HIGH") in kinds and (D, T3, "MERGE", "HIGH") in kinds
    assert (A, T0, "REDEEM", "HIGH") in kinds and (B, T1, "REDEEM", "HIGH") in kinds
    assert (C, T0, "TRANSFER", "LOW") in kinds and (D, T0, "TRANSFER", "LOW") in kinds
    assert (F, T2, "BUY", "MEDIUM") in kinds and (D, T2, "SELL", "MEDIUM") in kinds
    loser = [f for f in flows if f["wallet"] == B and f["token_id"] == T1 and f["kind"] == "REDEEM"]
    assert loser[0]["price_e6"] == 0

    pos = {(p["wallet"], p["token_id"]): p for p in await store.query_dicts(
        "SELECT * FROM {db}.positions")}
    for key in ((A, T0), (B, T0), (B, T1), (C, T0), (D, T3), (F, T2)):
        realized, amount, all_high = EXPECTED[key]
        p = pos[key]
        assert p["realized_pnl"] == realized, (key, p)
        assert p["amount"] == amount, (key, p)
        assert bool(p["all_high"]) == all_high, (key, p)
    assert pos[(A, T0)]["avg_price_e18"] == 466_666_666_666_666_666
    assert pos[(A, T0)]["settled"] == 1
    assert pos[(F, T2)]["avg_price_e18"] == 316_666_666_666_666_666
    # D: split 10 @0.5, merge 4 @0.5, sold 3 T2 @0.95/3: 0.95 - 1.5 = -0.55 USDC exactly
    assert pos[(D, T2)]["realized_pnl"] == -550_000
    assert pos[(D, T2)]["amount"] == 3 * E6
    assert [pos[(w, T4)]["realized_pnl"] for w in (G, H, J)] == [0, 2, 2]
    assert [pos[(w, T4)]["realized_pnl_e18"] for w in (G, H, J)] == [5 * 10**17, 15 * 10**17, 25 * 10**17]

    log = (data_dir / "backfill" / "on-complete.log").read_text().splitlines()
    assert log[-1] == SUCCESS_LINE
    assert [s.state for s in seen] == ["running", "done"] * 4
    assert out.report_path and out.report_path.exists()
    steps = await store.query("SELECT step, state FROM {db}.rebuild_steps ORDER BY step")
    assert steps == [(1, "done"), (2, "done"), (3, "done"), (4, "done")]


async def test_gates_pass_on_hand_data(store):
    await hand_chain().load(store)
    for mode in ("relaxed", "strict"):
        results = await run_gates(store, PROFILE, WIDE, mode)
        assert all(r.passed for r in results), results
        byname = {r.name: r for r in results}
        assert byname["coverage"].value == 1.0
        assert byname["duplicates"].value == 0
        assert byname["infra_balance"].value == 0
