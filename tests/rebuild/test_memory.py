"""Issue 8 (the whole run < 1 GB RSS): the embedded engine's memory settings are in effect, and
the memory-bounded paths — the net-flow gates on a chunked scratch copy, the rebuild's step 1 in
many chunks — give exactly what the one-query paths give."""

import dataclasses
import random

import pytest

from console.devchain.world import build_world
from console.engine import gates as gates_mod
from console.engine import rebuild as rebuild_mod
from console.engine import store as store_mod
from console.engine.gates import GATES, LIVE_FLOWS, evaluate, run_gates
from console.engine.rebuild import rebuild
from console.engine.store import EMBEDDED_MEMORY_SETTINGS
from console.settings import GateThresholds

from .builder import PROFILE, STREAMS, compare_pnl, hold_merges, load_world


@pytest.fixture(scope="module")
def world():
    return build_world("small", seed=1)


async def test_embedded_store_spills_early(store):
    names = ", ".join(f"'{n}'" for n in EMBEDDED_MEMORY_SETTINGS)
    rows = dict(await store.query(f"SELECT name, value FROM system.settings WHERE name IN ({names})"))
    assert rows == EMBEDDED_MEMORY_SETTINGS
    for name in ("max_bytes_before_external_group_by", "max_bytes_before_external_sort",
                 "max_bytes_in_join"):
        assert 0 < int(rows[name]) <= 256 << 20, name  # 0 would mean "never spill"


ODD_KEYS = ["", "0x", "0x0", "0x0000", "0x3fff", "0x4000", "0xffff", "0xffffffff", "0XABCD",
            "abc", "0x\u00e9", "~"]


@pytest.mark.parametrize("chunks", [2, 3, 7, 16, 4096])
async def test_tx_ranges_put_every_key_in_exactly_one_chunk(store, chunks):
    """The ranges are compared by ClickHouse itself: a hash (or any odd string) in two chunks
    would be counted twice by the net flows, in none it would be lost."""
    rng = random.Random(chunks)
    keys = ODD_KEYS + ["0x" + "%064x" % rng.getrandbits(256) for _ in range(2000)]
    ks = range(chunks) if chunks < 100 else [0, 1, chunks // 2, chunks - 2, chunks - 1]
    conds = [gates_mod.tx_range(k, chunks) for k in ks]
    hits = " + ".join(f"toUInt32({c})" for c in conds)
    rows = await store.query(f"SELECT tx_hash, {hits} FROM (SELECT arrayJoin({{keys:Array(String)}}) "
                             "AS tx_hash)", parameters={"keys": keys})
    if chunks < 100:
        assert {n for _, n in rows} == {1}, [k for k, n in rows if n != 1][:5]
        # the hashes are uniform, so are the chunks
        per = (await store.query(
            f"SELECT {', '.join(f'countIf({c})' for c in conds)} FROM "
            "(SELECT arrayJoin({keys:Array(String)}) AS tx_hash)",
            parameters={"keys": keys[len(ODD_KEYS):]}))[0]
        mean = (len(keys) - len(ODD_KEYS)) / chunks
        assert max(per) < 1.3 * mean and min(per) > 0.7 * mean, per
    else:
        assert all(n <= 1 for _, n in rows)


def test_tx_ranges_are_bounded():
    assert gates_mod.tx_range(0, 1) == "1"
    with pytest.raises(ValueError):
        gates_mod.tx_range(0, gates_mod.MAX_RANGE_CHUNKS + 1)


def test_the_python_heap_can_be_trimmed_here():
    """glibc's malloc_trim is found (the engine's freed buffers can go back to the OS)."""
    assert store_mod._malloc_trim is not None
    store_mod.trim_heap()


async def test_memory_purge_runs_on_the_embedded_store(store):
    await store.release_memory()
    assert store._can_purge  # SYSTEM JEMALLOC PURGE is understood
    assert store.healthy


@pytest.mark.parametrize("mode", ["relaxed", "strict"])
@pytest.mark.parametrize("chunk_rows", [1000, 10**9])  # many chunks; one (run on every core)
async def test_flow_gates_on_the_chunked_copy_equal_the_view(store, world, monkeypatch, mode, chunk_rows):
    await load_world(store, world)
    monkeypatch.setattr(gates_mod, "FLOW_CHUNK_ROWS", chunk_rows)
    chunks = await gates_mod.flow_chunks(store)
    assert chunks > 3 if chunk_rows == 1000 else chunks == 1
    results = {r.name: r for r in await run_gates(store, PROFILE, GateThresholds(), mode,
                                                  streams=STREAMS)}
    assert all(r.passed for r in results.values()), results
    for spec in GATES:
        if spec.name not in gates_mod.FLOW_GATES:
            continue
        direct = await evaluate(store, PROFILE, spec, GateThresholds(), mode, flows=LIVE_FLOWS)
        got = results[spec.name]
        assert (got.value, got.detail) == (direct.value, direct.detail), spec.name
        assert direct.detail.startswith("n=") and not direct.detail.startswith("n=0")
    # the scratch copy is a session temporary table, emptied after the run
    assert (await store.query(f"SELECT count() FROM {gates_mod.GATE_FLOWS}"))[0][0] == 0
    assert not await store.query("SELECT name FROM system.tables WHERE database = 'backfill' "
                                 f"AND name = '{gates_mod.GATE_FLOWS}'")


async def test_rebuild_in_many_chunks_matches_devchain_truth(store, data_dir, world, monkeypatch):
    truth = await load_world(store, world)
    monkeypatch.setattr(gates_mod, "FLOW_CHUNK_ROWS", 1000)
    monkeypatch.setattr(rebuild_mod, "POSITION_CHUNK_FLOWS", 500)
    out = await rebuild(store, PROFILE, GateThresholds(), data_dir, run_stats={}, run_id="chunks")
    assert out.ok, out.reason
    assert out.summary["net_flow_chunks"] > 3 and out.summary["position_chunks"] > 3
    compared, bad = await compare_pnl(store, truth)
    assert compared >= 0.8 * len(truth)
    assert not bad, bad[:5]


async def test_rebuild_first_compacts_what_it_reads_with_final(store, data_dir, world, monkeypatch):
    await hold_merges(store, gates_mod.SOURCE_TABLES)
    insert = store.insert_columns

    async def in_two_parts(table, columns, **kw):
        n = len(next(iter(columns.values())))
        for part in (slice(0, n // 2), slice(n // 2, n)):
            await insert(table, {k: v[part] for k, v in columns.items()}, **kw)

    monkeypatch.setattr(store, "insert_columns", in_two_parts)
    truth = await load_world(store, world)
    monkeypatch.undo()
    monkeypatch.setattr(gates_mod, "COMPACT_MIN_ROWS", 1)  # this world's tables are small

    out = await rebuild(store, PROFILE, GateThresholds(), data_dir, run_stats={}, run_id="compact")

    assert out.ok, out.reason
    assert all(f"{t} 2->1" in out.summary["compacted"] for t in gates_mod.SOURCE_TABLES), out.summary
    parts = {t: n for t, (n, _) in (await store.parts(gates_mod.SOURCE_TABLES)).items()}
    assert parts == {t: 1 for t in gates_mod.SOURCE_TABLES}
    compared, bad = await compare_pnl(store, truth)
    assert compared >= 0.8 * len(truth)
    assert not bad, bad[:5]


@pytest.mark.parametrize("same_content", [True, False])
async def test_compaction_waits_for_a_clean_duplicates_check(store, world, same_content, monkeypatch):
    """A re-fetched row (same content) may be merged away; a key written with other content
    must stay in the raw rows for the duplicates gate to report, so nothing is compacted."""
    monkeypatch.setattr(gates_mod, "COMPACT_MIN_ROWS", 1)
    await hold_merges(store, gates_mod.SOURCE_TABLES)
    await load_world(store, world)
    row = (await store.query_dicts(
        "SELECT * EXCEPT created_at FROM {db}.erc20_transfers ORDER BY tx_hash LIMIT 1"))[0]
    if not same_content:
        row["value"] += 1
    await store.insert_rows("erc20_transfers", [row])
    raw_and_final = ("SELECT (SELECT count() FROM {db}.erc20_transfers), "
                     "(SELECT count() FROM {db}.erc20_transfers FINAL)")
    raw, final = (await store.query(raw_and_final))[0]
    assert raw == final + 1

    line = await gates_mod.compact_sources(store, PROFILE)

    if same_content:
        assert line.startswith("compacted the source tables") and "erc20_transfers 2->1" in line
        assert (await store.query(raw_and_final))[0] == (final, final)
    else:
        assert line.startswith("source tables not compacted: the duplicates check did not pass"), line
        assert (await store.query(raw_and_final))[0] == (raw, final)
    result = await evaluate(store, PROFILE, gates_mod.DUPLICATES, GateThresholds(), "strict")
    assert result.passed is same_content


@pytest.mark.parametrize("table", gates_mod.SOURCE_TABLES)
async def test_duplicates_finds_a_changed_key_in_any_table_beside_harmless_repeats(store, world, table):
    """The exact duplicates query groups only the tables whose raw rows outnumber their keys:
    a key written with other content is found in whichever table holds it, next to another
    table's same-content re-fetch (reported as nothing), and n still counts every raw row."""
    await load_world(store, world)
    other = next(t for t in gates_mod.SOURCE_TABLES if t != table)
    first = "SELECT * EXCEPT created_at FROM {db}.%s ORDER BY tx_hash, log_index LIMIT 1"
    await store.insert_rows(other, await store.query_dicts(first % other))  # a re-fetch: same content
    changed = (await store.query_dicts(first % table))[0]
    changed["block_number"] += 1  # in every table's content hash
    await store.insert_rows(table, [changed])
    raw = sum([(await store.query(f"SELECT count() FROM {{db}}.{t}"))[0][0] for t in gates_mod.SOURCE_TABLES])

    result = await evaluate(store, PROFILE, gates_mod.DUPLICATES, GateThresholds(), "strict")

    assert not result.passed and result.value == 1, result
    assert result.detail.startswith(f"n={raw}; {table}: 1 key(s), e.g. {changed['tx_hash']}#"), result.detail
    assert other not in result.detail, result.detail


async def test_only_tables_of_compact_min_rows_are_compacted(store, world, monkeypatch):
    """Below COMPACT_MIN_ROWS a table is left in its parts (the merge would only cost time);
    from it, it is merged, whatever the other tables hold."""
    await hold_merges(store, gates_mod.SOURCE_TABLES)
    await load_world(store, world)
    await store.insert_rows("erc20_transfers", await store.query_dicts(  # a second part of each
        "SELECT * EXCEPT created_at FROM {db}.erc20_transfers ORDER BY tx_hash LIMIT 3"))
    await store.insert_rows("erc1155_transfers", await store.query_dicts(
        "SELECT * EXCEPT created_at FROM {db}.erc1155_transfers ORDER BY tx_hash LIMIT 3"))
    sizes = await store.parts(("erc20_transfers", "erc1155_transfers"))
    assert all(parts == 2 for parts, _ in sizes.values()), sizes
    erc20_rows, erc1155_rows = sizes["erc20_transfers"][1], sizes["erc1155_transfers"][1]
    assert erc20_rows != erc1155_rows, sizes

    monkeypatch.setattr(gates_mod, "COMPACT_MIN_ROWS", max(erc20_rows, erc1155_rows) + 1)
    assert await gates_mod.compact_sources(store, PROFILE) is None
    assert await store.parts(("erc20_transfers", "erc1155_transfers")) == sizes

    monkeypatch.setattr(gates_mod, "COMPACT_MIN_ROWS", max(erc20_rows, erc1155_rows))
    line = await gates_mod.compact_sources(store, PROFILE)
    bigger, smaller = sorted(sizes, key=lambda t: -sizes[t][1])
    assert line.startswith("compacted the source tables") and f"{bigger} 2->1" in line, line
    assert smaller not in line, line
    after = await store.parts(("erc20_transfers", "erc1155_transfers"))
    assert after[bigger][0] == 1 and after[smaller] == sizes[smaller], after


async def test_views_are_created_once_per_store_unless_the_profile_changes(store, monkeypatch):
    created = []
    real = store.command

    async def command(sql, *a, **k):
        created.append(sql)
        return await real(sql, *a, **k)

    monkeypatch.setattr(store, "command", command)
    await gates_mod.ensure_views(store, PROFILE)
    first = len(created)
    await gates_mod.ensure_views(store, PROFILE)
    assert first > 0 and len(created) == first
    other = dataclasses.replace(PROFILE, exchanges=PROFILE.exchanges[:1])
    await gates_mod.ensure_views(store, other)
    assert len(created) == 2 * first
