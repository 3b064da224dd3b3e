"""`crmkit fit SOURCE` on the CDNOW sample written as a transactions CSV."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crmkit.cli import main

from .conftest import CALIBRATION_END


@pytest.fixture(scope="module")
def cdnow_csv(cdnow_con, tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "cdnow.csv"
    cdnow_con.execute(f"COPY transactions TO '{path}' (HEADER)")
    return path


def _fit(capsys, *argv):
    assert main(["fit", *map(str, argv)]) == 0
    out = capsys.readouterr()
    return out.out, out.err


def test_json_output(cdnow_csv, capsys):
    out, err = _fit(capsys, cdnow_csv, "--calibration-end", CALIBRATION_END, "--json")
    result = json.loads(out)
    assert result["model"] == "bgnbd" and result["n_members"] == 2357
    # Fader, Hardie & Lee (2005): r = 0.2426, alpha = 4.4136, a = 0.7930, b = 2.4262, LL = -9582.43
    assert result["params"] == pytest.approx({"r": 0.2426, "alpha": 4.4136, "a": 0.7930, "b": 2.4262}, rel=1e-3)
    assert result["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert set(result["standard_errors"]) == {"r", "alpha", "a", "b"}
    assert "fitting BG/NBD" in err  # progress on stderr, JSON alone on stdout


def test_pareto_in_days(cdnow_csv, capsys):
    out, _ = _fit(capsys, cdnow_csv, "--calibration-end", CALIBRATION_END, "--model", "pareto",
                  "--period", "D", "--json")
    result = json.loads(out)
    assert set(result["params"]) == {"r", "alpha", "s", "beta"} and result["period"] == "D"
    # in days the scale parameters are 7 times those in weeks (Fader & Hardie: alpha 10.58, beta 11.66 weeks)
    assert result["params"]["alpha"] == pytest.approx(7 * 10.58, rel=5e-3)
    assert result["params"]["r"] == pytest.approx(0.553, rel=5e-3)


def test_text_output_defaults_to_the_last_order_day(cdnow_csv, capsys):
    out, _ = _fit(capsys, cdnow_csv, "--model", "mbgnbd")
    assert out.startswith("MBG/NBD on 2,357 members") and "1998-06-30" in out and "log-likelihood" in out


def test_missing_file_is_one_sentence(tmp_path):
    out = subprocess.run([sys.executable, "-m", "crmkit", "fit", str(tmp_path / "nope.csv")],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [f"crmkit fit: {tmp_path / 'nope.csv'}: no such file."]


def test_bad_date(cdnow_csv, capsys):
    assert main(["fit", str(cdnow_csv), "--calibration-end", "1997-02-30"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_every_model_converges_on_the_demo_chain(tmp_path, capsys):
    from crmkit.demo import generate

    generate(tmp_path / "demo", members=5000, seed=3)
    db = tmp_path / "crm.duckdb"
    exports = [str(p) for p in sorted((tmp_path / "demo").iterdir()) if p.name != "truth.json"]
    assert main(["load", *exports, "--db", str(db)]) == 0
    capsys.readouterr()
    for model in ("bgnbd", "pareto", "mbgnbd"):
        out, _ = _fit(capsys, db, "--model", model, "--json")
        result = json.loads(out)
        assert result["converged"] and result["n_members"] > 3000
        assert all(v > 0 and se > 0 for v, se in zip(result["params"].values(),
                                                     result["standard_errors"].values()))
