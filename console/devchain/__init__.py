"""devchain: a deterministic simulated Polygon JSON-RPC node with Polymarket-like activity.

The default RPC of the console (`rpc_url = "devchain"`) and the fixture of every end-to-end
test. Modules, one job each:
  chain.py    block timestamps/hashes/day boundaries (O(1) without per-block storage)
  density.py  how busy each day is (demo election-night spike, full 5k-50k/day)
  markets.py  market lives (trades, splits, merges, resolutions, redemptions) + PnL truth
  noise.py    logs a correct filter must skip, and collateral transfers outside Polymarket
  index.py    per-day pre-serialised logs and the eth_getLogs filter index
  world.py    `build_world()` / `World`: lazy per-day generation and queries
  truth.py    ground-truth rows and `export_truth()`
  faults.py   provider fault profiles with exact error texts
  server.py   aiohttp JSON-RPC server, `start_server()`
  process.py  `spawn()` the server as a child process
  cli.py      `backfill-console devchain`
Nothing heavy is imported here, so `import console.devchain.cli` stays cheap.
"""

__all__ = ["build_world", "start_server", "spawn"]


def __getattr__(name):  # lazy re-exports
    if name == "build_world":
        from .world import build_world

        return build_world
    if name == "start_server":
        from .server import start_server

        return start_server
    if name == "spawn":
        from .process import spawn

        return spawn
    raise AttributeError(name)
