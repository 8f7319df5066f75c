import csv
import json

import pytest

from guided_diffusion import logger


@pytest.fixture(autouse=True)
def _fresh_logger(monkeypatch):
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "RANK", "OPENAI_LOGDIR", "OPENAI_LOG_FORMAT"):
        monkeypatch.delenv(var, raising=False)
    previous = logger.Logger.CURRENT
    logger.Logger.CURRENT = None
    yield
    logger.reset()
    logger.Logger.CURRENT = previous


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_kvs_go_to_every_format(tmp_path, capsys):
    logger.configure(dir=str(tmp_path), format_strs=["stdout", "log", "csv", "json"])
    assert logger.get_dir() == str(tmp_path)
    logger.logkv("step", 0)
    logger.logkv_mean("loss", 1.0)
    logger.logkv_mean("loss", 2.0)
    logger.logkv_mean("loss", 6.0)
    written = logger.dumpkvs()
    assert written == {"step": 0, "loss": pytest.approx(3.0)}
    assert logger.getkvs() == {}

    logger.logkv("step", 1)
    logger.logkv("grad_norm", 0.5)
    logger.dumpkvs()

    rows = read_csv(tmp_path / "progress.csv")
    assert list(rows[0]) == ["loss", "step", "grad_norm"]  # header grew with the new key
    assert rows[0] == {"loss": "3.0", "step": "0", "grad_norm": ""}
    assert rows[1] == {"loss": "", "step": "1", "grad_norm": "0.5"}
    lines = (tmp_path / "progress.json").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"loss": 3.0, "step": 0}, {"grad_norm": 0.5, "step": 1}]
    text = (tmp_path / "log.txt").read_text()
    assert "| loss" in text and "| grad_norm" in text
    assert "| loss" in capsys.readouterr().out


def test_files_without_rows_are_not_left_behind(tmp_path):
    logger.configure(dir=str(tmp_path), format_strs=["log", "csv", "json"])
    logger.log("sampling...")
    logger.reset()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt"]
    (tmp_path / "progress.csv").write_text("step\n1\n")
    logger.configure(dir=str(tmp_path), format_strs=["csv"])
    logger.logkv("step", 7)
    logger.dumpkvs()
    assert read_csv(tmp_path / "progress.csv") == [{"step": "7"}]  # a rerun starts the table over, as before


def test_log_levels(tmp_path):
    logger.configure(dir=str(tmp_path), format_strs=["log"])
    logger.info("hello", 3)
    logger.debug("hidden")
    logger.set_level(logger.DEBUG)
    logger.debug("shown")
    logger.set_level(logger.ERROR)
    logger.warn("dropped")
    logger.error("kept")
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert lines[1:] == ["hello 3", "shown", "kept"]


def test_environment_variables_choose_dir_and_formats(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_LOGDIR", str(tmp_path / "run"))
    monkeypatch.setenv("OPENAI_LOG_FORMAT", "json")
    logger.logkv("a", 1)  # first use configures the default logger
    logger.dumpkvs()
    assert logger.get_dir() == str(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["progress.json"]


def test_non_zero_rank_writes_only_its_own_text_log(tmp_path, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "1")
    logger.configure(dir=str(tmp_path))
    logger.logkv("a", 1)
    logger.dumpkvs()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log-rank001.txt"]


class FakeComm:
    """Two ranks' worth of ``gather``: this rank's dict plus a fixed other one."""

    def __init__(self, rank, other):
        self.rank = rank
        self.other = other

    def gather(self, local, root=0):
        return [local, self.other] if self.rank == root else None


def test_comm_averages_weighted_by_counts_and_root_writes(tmp_path):
    logger.configure(dir=str(tmp_path / "r0"), format_strs=["csv"], comm=FakeComm(0, {"loss": (4.0, 3)}))
    logger.logkv_mean("loss", 0.0)
    assert logger.dumpkvs() == {"loss": pytest.approx(3.0)}  # (0*1 + 4*3) / 4
    assert read_csv(tmp_path / "r0" / "progress.csv") == [{"loss": "3.0"}]

    logger.configure(dir=str(tmp_path / "r1"), format_strs=["csv"], comm=FakeComm(1, {}))
    logger.logkv("loss", 1.0)
    assert logger.dumpkvs() == {}
    assert not (tmp_path / "r1" / "progress.csv").exists()  # no row, no file


def test_scoped_configure_restores_previous_logger(tmp_path):
    logger.configure(dir=str(tmp_path / "outer"), format_strs=["log"])
    with logger.scoped_configure(dir=str(tmp_path / "inner"), format_strs=["log"]):
        assert logger.get_dir() == str(tmp_path / "inner")
        logger.log("inside")
    assert logger.get_dir() == str(tmp_path / "outer")
    logger.log("outside")
    assert "inside" in (tmp_path / "inner" / "log.txt").read_text()
    assert "inside" not in (tmp_path / "outer" / "log.txt").read_text()
    assert "outside" in (tmp_path / "outer" / "log.txt").read_text()


def test_unknown_format_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="tensorboard"):
        logger.configure(dir=str(tmp_path), format_strs=["tensorboard"])
