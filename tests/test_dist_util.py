import json
import socket

import pytest
import torch
import torch.distributed as dist

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


# An srun task's environment (Slurm 23): rank 5 of 8 on two nodes, second node.
SRUN = {"SLURM_JOB_ID": "123456", "SLURM_STEP_ID": "0", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
        "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "8", "SLURM_NODELIST": "gpu[07-08]",
        "SLURM_STEP_NODELIST": "gpu[07-08]", "SLURMD_NODENAME": "gpu08"}


def test_srun_task_gets_its_rank_and_rank0s_host():
    launch = dist_util.launch_from_env(SRUN)
    assert launch == dist_util.Launch("srun", 5, 8, 1, "gpu07", launch.master_port)
    first, count = dist_util.SLURM_PORTS
    assert first <= launch.master_port < first + count
    # each task of the step derives the same port; another step or job, another port
    assert dist_util.launch_from_env({**SRUN, "SLURM_PROCID": "0", "SLURMD_NODENAME": "gpu07"}).master_port \
        == launch.master_port
    ports = {dist_util.launch_from_env({**SRUN, "SLURM_JOB_ID": j, "SLURM_STEP_ID": s}).master_port
             for j in ("123456", "123457") for s in ("0", "1")}
    assert len(ports) == 4
    assert dist_util.launch_from_env({**SRUN, "SLURM_STEP_RESV_PORTS": "12000-12003"}).master_port == 12000
    given = dist_util.launch_from_env({**SRUN, "MASTER_ADDR": "10.0.0.7", "MASTER_PORT": "29500"})
    assert (given.master_addr, given.master_port) == ("10.0.0.7", 29500)


def test_batch_script_python_and_one_task_steps_run_alone():
    batch = {k: v for k, v in SRUN.items() if not k.startswith("SLURM_STEP")} | {"SLURM_PROCID": "0"}
    assert dist_util.launch_from_env(batch) == dist_util.Launch("python")
    one = {**SRUN, "SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "1", "SLURM_STEP_NODELIST": "gpu07"}
    assert dist_util.launch_from_env(one).world_size == 1
    assert dist_util.launch_from_env({}) == dist_util.Launch("python")


def test_launcher_precedence():
    torchrun = {"RANK": "3", "WORLD_SIZE": "16", "LOCAL_RANK": "3", "MASTER_ADDR": "gpu07", "MASTER_PORT": "29500"}
    assert dist_util.launch_from_env({**SRUN, **torchrun}) == dist_util.Launch("torchrun", 3, 16, 3, "gpu07", 29500)
    # mpiexec under srun-launched daemons (one per node): MPI's ranks, not the daemons'
    assert dist_util.launch_from_env({**SRUN, "PMI_RANK": "13", "PMI_SIZE": "16"}) == \
        dist_util.Launch("mpiexec", world_size=16)
    assert dist_util.launch_from_env({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "1"}).launcher == "mpiexec"
    # srun --mpi=pmi2 / pmix: MPI's variables are srun's own, so no MPI library is needed
    assert dist_util.launch_from_env({**SRUN, "PMI_RANK": "5", "PMI_SIZE": "8"}).launcher == "srun"
    assert dist_util.launch_from_env({**SRUN, "PMIX_RANK": "5"}).launcher == "srun"


@pytest.mark.parametrize("nodelist, host", [
    ("gpu[07-08]", "gpu07"), ("node[01-04,07]", "node01"), ("node[7,1-4]", "node7"), ("a1,b[2-3]", "a1"),
    ("rack[2-3]-node[010-012],x", "rack2-node010"), ("login", "login"),
])
def test_first_host_of_a_host_list(nodelist, host):
    assert dist_util.first_host(nodelist) == host


@pytest.mark.parametrize("env, message", [
    ({"SLURM_PROCID": "x"}, r"\$SLURM_PROCID='x' is not an integer"),
    ({"SLURM_PROCID": "8"}, "not a rank of SLURM_STEP_NUM_TASKS=8"),
    ({"SLURM_PROCID": "0"}, "rank 0 on gpu08, not on the step's first node gpu07: set MASTER_ADDR"),
    ({"SLURM_STEP_NODELIST": "gpu[07-"}, "cannot read the Slurm host list"),
])
def test_srun_environment_errors(env, message):
    with pytest.raises(ValueError, match=message):
        dist_util.launch_from_env({**SRUN, **env})


def test_group_that_cannot_form_is_an_error_not_world_size_one(monkeypatch):
    """srun's rank 0 whose other tasks never arrive: a ValueError naming the address, after the rendezvous timeout."""
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)  # setup_dist sets them; restored afterwards
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {**SRUN, "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_STEP_NUM_TASKS": "2",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(dist_util, "RENDEZVOUS_TIMEOUT", 0.2)
    if dist.is_initialized():  # an earlier test's group of one (every user calls setup_dist again)
        dist.destroy_process_group()
    with pytest.raises(ValueError, match=rf"srun: rank 0 of 2 could not form the process group at 127.0.0.1:{port}"):
        dist_util.setup_dist()
    assert not dist.is_initialized()
