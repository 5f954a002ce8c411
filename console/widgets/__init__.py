"""Console widgets: one per module, each fed from an engine `Snapshot`."""

from console.widgets.event_log import EventLog
from console.widgets.gates_pane import GatesPane
from console.widgets.rebuild_pane import RebuildPane
from console.widgets.rpc_pane import RpcPane
from console.widgets.shard_table import ShardTable
from console.widgets.snapshot_view import SnapshotView
from console.widgets.status_bar import StatusBar

__all__ = [
    "EventLog", "GatesPane", "RebuildPane", "RpcPane", "ShardTable", "SnapshotView", "StatusBar",
]
