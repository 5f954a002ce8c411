"""What an attached console or `status` reads back from the mirror is the engine's snapshot."""

import json

from console.engine.remote import snapshot_from_dict
from console.engine.supervisor import snapshot_to_json
from tests.ui.fake_supervisor import make_snapshot


def test_published_snapshot_reads_back_equal():
    snap = make_snapshot(days_total=1048)
    back = snapshot_from_dict(json.loads(snapshot_to_json(snap)), read_only=snap.read_only)
    assert back == snap
    assert len(back.days) == 1048 and back.days[17].day == snap.days[17].day
