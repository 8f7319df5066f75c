import json

import torch

from guided_diffusion import dist_util

from launch import run_python

SNIPPET = """
import json, sys, torch
from guided_diffusion import dist_util
dist_util.setup_dist()
state = dist_util.load_state_dict(sys.argv[1], map_location="cpu")
t = torch.tensor([float(dist_util.get_rank())])
dist_util.sync_params([t])
row = {"rank": dist_util.get_rank(), "world": dist_util.get_world_size(),
       "sum": state["w"].sum().item(), "synced": t.item(), "device": str(dist_util.dev())}
with open(f"{sys.argv[2]}.{dist_util.get_rank()}", "w") as f:
    json.dump(row, f)
"""


def _rows(prefix):
    return sorted((json.loads(p.read_text()) for p in prefix.parent.glob(prefix.name + ".*")),
                  key=lambda r: r["rank"])


def test_plain_python_is_world_size_one(tmp_path):
    dist_util.setup_dist()
    assert dist_util.get_world_size() == 1 and dist_util.get_rank() == 0
    assert dist_util.dev() == torch.device("cpu")
    torch.save({"w": torch.arange(4.0)}, tmp_path / "m.pt")
    assert torch.equal(dist_util.load_state_dict(str(tmp_path / "m.pt"))["w"], torch.arange(4.0))


def _run(tmp_path, nproc):
    torch.save({"w": torch.arange(10.0)}, tmp_path / "m.pt")
    (tmp_path / "snippet.py").write_text(SNIPPET)
    run_python([str(tmp_path / "snippet.py"), str(tmp_path / "m.pt"), str(tmp_path / "row")], nproc=nproc)
    return _rows(tmp_path / "row")


def test_mpiexec_initialises_and_broadcasts(tmp_path):
    rows = _run(tmp_path, 2)
    assert [r["rank"] for r in rows] == [0, 1]
    assert all(r["world"] == 2 and r["sum"] == 45.0 and r["synced"] == 0.0 for r in rows)


def test_broadcast_of_large_payload_in_chunks(tmp_path):
    snippet = tmp_path / "chunks.py"
    snippet.write_text(
        "import sys\nfrom guided_diffusion import dist_util\n"
        "dist_util._BROADCAST_CHUNK = 7\n"
        "dist_util.setup_dist()\n"
        "data = bytes(range(100)) if dist_util.get_rank() == 0 else None\n"
        "ok = dist_util._broadcast_bytes(data) == bytes(range(100))\n"
        "open(f'{sys.argv[1]}.{dist_util.get_rank()}', 'w').write(str(ok))\n"
    )
    run_python([str(snippet), str(tmp_path / "ok")], nproc=2)
    assert [(tmp_path / f"ok.{r}").read_text() for r in (0, 1)] == ["True", "True"]


def test_torchrun_environment_initialises(tmp_path):
    torch.save({"w": torch.arange(10.0)}, tmp_path / "m.pt")
    (tmp_path / "snippet.py").write_text(SNIPPET)
    run_python(["-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                str(tmp_path / "snippet.py"), str(tmp_path / "m.pt"), str(tmp_path / "row")])
    rows = _rows(tmp_path / "row")
    assert sorted(r["rank"] for r in rows) == [0, 1]
    assert all(r["world"] == 2 and r["sum"] == 45.0 and r["synced"] == 0.0 for r in rows)
