"""ethereum-etl on the job (runs inside the ethereum-etl venv).

    <etl-venv>/bin/python etl_job.py -- export_token_transfers -s A -e B -p URL -t USDC -o OUT.csv ...

Runs ethereum-etl's own CLI (`ethereumetl export_token_transfers`) in this process, with one
change: ethereum-etl first asks for `eth_newFilter` + `eth_getFilterLogs` and falls back to
`eth_getLogs` only when the node answers exactly "the method is currently not implemented:
eth_newFilter". The devchain (like many providers' eth_getLogs-only plans) does not serve
filters and answers the standard -32601 instead, so we raise ethereum-etl's own fallback error
locally: no request is sent for it, and every batch goes to eth_getLogs as on such a node.

What the tool cannot express: `export_token_transfers` always filters on topic0 = ERC-20/721
`Transfer` (optionally by token address) — not on topic1/topic2, so it gets every USDC
transfer (the scorer keeps those touching Polymarket) — and it has no command for arbitrary
logs such as ERC-1155 `TransferSingle`/`TransferBatch` by topic (only receipts by tx hash,
which needs every block's transactions and one eth_getTransactionReceipt per tx).
"""

from __future__ import annotations

import sys


def _no_filters(self, *args, **kwargs):
    raise ValueError({"code": -32000, "message": "the method is currently not implemented: eth_newFilter"})


def main() -> None:
    import web3.eth

    web3.eth.Eth.filter = _no_filters  # ethereum-etl's own getLogs fallback, without the round trip
    from ethereumetl.cli import cli

    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    cli.main(args=argv, prog_name="ethereumetl")


if __name__ == "__main__":
    main()
