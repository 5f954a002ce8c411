"""Console screens: dashboard, shard detail, help, confirm."""

from console.screens.confirm import ConfirmScreen
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen
from console.screens.shard_detail import ShardDetailScreen

__all__ = ["ConfirmScreen", "DashboardScreen", "HelpScreen", "ShardDetailScreen"]
