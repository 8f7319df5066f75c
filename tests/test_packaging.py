"""setup.py: an installed (non-editable) copy carries the shipped models, class descriptions and data."""

import shutil
import subprocess
import sys

from launch import ROOT


def test_installed_copy_finds_shipped_data(tmp_path):
    # a copy without build/ (setuptools would reuse what an earlier build left there)
    shutil.copytree(ROOT, tmp_path / "src", ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info",
                                                                         "__pycache__", "tests", "runs", "demo_out"))
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                    str(tmp_path / "src")],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True, capture_output=True, cwd=tmp_path)
    probe = ("import guided_diffusion\n"
             "from guided_diffusion.progressive.relevance import load_descriptions, load_relevance, shipped_relevance\n"
             "from guided_diffusion.progressive.relevance import CLASS_DESCRIPTIONS_DIR\n"
             "from guided_diffusion.models import shipped_names\n"
             "print(guided_diffusion.__file__)\n"
             "print(len(load_descriptions(CLASS_DESCRIPTIONS_DIR / 'imagenet1k.json')))\n"
             "print(load_relevance(shipped_relevance('digits')).shape)\n"
             "print(' '.join(shipped_names()))\n"
             "from guided_diffusion.testbeds.fashion import load_subset\n"
             "print(load_subset()[0].shape)\n")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""}).stdout.splitlines()
    assert out[0].startswith(str(tmp_path / "site"))  # the installed copy, not the checkout
    assert out[1:3] == ["1000", "(10, 10)"]
    assert {"digits/adm", "digits/cadm", "digits/classifier"} <= set(out[3].split())
    assert out[4] == "(2000, 28, 28, 3)"
