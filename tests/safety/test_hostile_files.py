"""Files made to hurt: a checkpoint carrying a pickle payload, OSM XML with entity expansion or
external entities, a building with a million vertices. Each is refused in one line, quickly and in
bounded memory, and nothing it carries runs."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from geoalign.model.checkpoint import WEIGHTS
from geoalign.model.predictor import DEFAULT_MODEL_DIR

GEOALIGN = str(Path(sys.executable).parent / "geoalign")


def one_line(result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("where", ["whole", "inside_state_dict"])
def test_a_checkpoint_with_a_pickle_payload_is_refused_and_never_runs(where, austin, tmp_path):
    model = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    marker = tmp_path / "payload_ran"
    state = torch.load(model / WEIGHTS, weights_only=True)
    if where == "whole":
        torch.save(Payload(marker), model / WEIGHTS)
    else:
        state[next(iter(state))] = Payload(marker)
        torch.save(state, model / WEIGHTS)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["-q", "align", str(austin["image"]), str(austin["buildings"]),
                                       "-o", str(out), "--model", str(model)])
    line = one_line(result)
    assert "weights.pt" in line and "pickled Python objects" in line and "refused" in line
    assert "weights_only" not in line and "can still be loaded" not in line  # never that advice
    assert not marker.exists()
    assert not out.exists()


def test_a_truncated_checkpoint_is_one_line_without_torchs_advice(austin, tmp_path):
    model = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model"))
    data = (model / WEIGHTS).read_bytes()
    (model / WEIGHTS).write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(main, ["-q", "align", str(austin["image"]), str(austin["buildings"]),
                                       "-o", str(tmp_path / "out"), "--model", str(model)])
    line = one_line(result)
    assert "corrupt or unreadable weights" in line and "weights_only" not in line


def billion_laughs(levels: int = 9) -> str:
    entities = ['<!ENTITY l0 "' + "lol" * 30 + '">']
    entities += [f'<!ENTITY l{i} "' + f"&l{i - 1};" * 10 + '">' for i in range(1, levels + 1)]
    return ('<?xml version="1.0"?>\n<!DOCTYPE osm [\n' + "\n".join(entities) + "\n]>\n"
            f'<osm version="0.6"><node id="1" lat="0.5" lon="0.5"><tag k="name" v="&l{levels};"/>'
            "</node></osm>\n")


def external_entity(target: Path) -> str:
    return ('<?xml version="1.0"?>\n'
            f'<!DOCTYPE osm [<!ENTITY secret SYSTEM "file://{target}">]>\n'
            '<osm version="0.6"><node id="1" lat="0.5" lon="0.5"/><node id="2" lat="0.5" lon="0.6"/>'
            '<node id="3" lat="0.6" lon="0.6"/><way id="9"><nd ref="1"/><nd ref="2"/><nd ref="3"/>'
            '<nd ref="1"/><tag k="building" v="yes"/><tag k="name" v="&secret;"/></way></osm>\n')


@pytest.mark.parametrize("kind", ["billion_laughs", "external_entity"])
def test_osm_xml_with_entities_is_refused_in_bounded_memory(kind, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    path = tmp_path / f"{kind}.osm"
    path.write_text(billion_laughs() if kind == "billion_laughs" else external_entity(secret))
    out = tmp_path / "b.geojson"
    status = tmp_path / "status.txt"  # the child's own /proc status at exit: VmHWM is its peak
    launcher = ("import atexit, sys; from pathlib import Path; "
                f"atexit.register(lambda: Path({str(status)!r}).write_text(Path('/proc/self/status').read_text())); "
                "from cli.main import main; sys.argv = ['geoalign'] + sys.argv[1:]; main()")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", launcher, "-q", "fetch", "buildings", "--bbox", "0", "0", "1", "1",
                           "--source", f"osm-xml:{path}", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    elapsed_s = time.monotonic() - t0
    peak_kb = int(next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:")))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "declares the XML entity" in lines[0], proc.stderr
    assert not out.exists() and "do not read me" not in proc.stderr
    # 10^9 expansions of 'lol' would be ~90 GB; the refusal costs what starting Python costs
    assert elapsed_s < 60
    assert 10_000 < peak_kb < 1_500_000  # a Python process, not the expansion


def test_a_building_with_a_million_vertices_is_refused_clearly(austin, tmp_path):
    n = 1_000_000
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([616950 + 50 * np.cos(t), 3344550 + 50 * np.sin(t)]).round(3)
    ring = np.vstack([ring, ring[:1]])
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::26914"}},
           "features": [{"type": "Feature", "properties": {"id": 1},
                         "geometry": {"type": "Polygon", "coordinates": [ring.tolist()]}}]}
    path = tmp_path / "ring.geojson"
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    t0 = time.monotonic()
    result = CliRunner().invoke(main, ["-q", "align", str(austin["image"]), str(path), "-o",
                                       str(tmp_path / "out"), "--method", "global"])
    line = one_line(result)
    assert "1,000,001 vertices" in line and "limit 100,000" in line
    assert time.monotonic() - t0 < 60  # aligning it would take about a minute and 1.3 GB
    assert not (tmp_path / "out").exists() and path.read_bytes() == before


def _xml_bomb(path: Path, mb: int) -> Path:
    """An OSM XML file whose root holds ``mb`` MB of blanks: valid XML, compressed a thousandfold."""
    import bz2
    import gzip

    opener = gzip.open if path.suffix == ".gz" else bz2.open
    with opener(path, "wb") as fh:
        fh.write(b'<?xml version="1.0"?>\n<osm version="0.6">')
        blanks = b" " * (1 << 20)
        for _ in range(mb):
            fh.write(blanks)
        fh.write(b"</osm>\n")
    return path


@pytest.mark.parametrize("suffix", [".osm.gz", ".osm.bz2"])
def test_a_compressed_osm_bomb_is_refused_by_its_ratio(suffix, tmp_path):
    bomb = _xml_bomb(tmp_path / f"bomb{suffix}", 24)
    assert bomb.stat().st_size < 100_000  # 24 MB in under 100 kB
    out = tmp_path / "b.geojson"
    result = CliRunner().invoke(main, ["-q", "fetch", "buildings", "--bbox", "0", "0", "1", "1",
                                       "--source", f"osm-xml:{bomb}", "-o", str(out)])
    line = one_line(result)
    assert "decompression bomb" in line and "times its size" in line and str(bomb) in line
    assert not out.exists()


def test_a_compressed_osm_file_past_the_size_cap_is_refused(tmp_path, monkeypatch):
    from geoalign.sources import settings

    monkeypatch.setattr(settings, "max_decompressed_bytes", 4_000_000)
    monkeypatch.setattr(settings, "max_compression_ratio", 1e9)  # the size cap alone
    bomb = _xml_bomb(tmp_path / "big.osm.gz", 6)
    out = tmp_path / "b.geojson"
    result = CliRunner().invoke(main, ["-q", "fetch", "buildings", "--bbox", "0", "0", "1", "1",
                                       "--source", f"osm-xml:{bomb}", "-o", str(out)])
    assert "decompresses to more than 4 MB" in one_line(result)
    assert not out.exists()
