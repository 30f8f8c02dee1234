"""Outputs never replace inputs or files geoalign did not write: such runs stop with one line,
exit 1, before writing, and every file in the folder keeps its bytes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from geoalign.io.output_set import PENDING, RUN_MANIFEST


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(args, cwd: Path | None = None):
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, ["-q", *map(str, args)])
    finally:
        os.chdir(old)


def _refused(result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def user_folder(tmp_path, austin) -> Path:
    """A user's folder holding the sample image, its buildings and a note."""
    p = tmp_path / "p"
    p.mkdir()
    shutil.copy(austin["image"], p / "image.tif")
    shutil.copy(austin["buildings"], p / "buildings.geojson")
    (p / "notes.txt").write_text("field notes\n")
    return p


def _build(folder: Path, out, cwd: Path | None = None):
    return _run(["dataset", "build", "--source", folder / "image.tif", folder / "buildings.geojson",
                 "-o", out, "--scales", "3", "--no-preview"], cwd=cwd)


def test_dataset_build_into_the_inputs_folder_keeps_every_file(user_folder):
    before = _hashes(user_folder)
    _refused(_build(user_folder, user_folder), "holds the input")
    assert _hashes(user_folder) == before


def test_dataset_build_into_a_folder_of_the_users_is_refused(user_folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    _refused(_build(user_folder, other), "did not write", "notes.txt")
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_dataset_build_into_the_working_directory_is_one_line(user_folder):
    before = _hashes(user_folder)
    _refused(_build(user_folder, ".", cwd=user_folder), "working directory")
    assert _hashes(user_folder) == before


def test_dataset_build_replaces_its_own_dataset_and_fills_an_empty_folder(user_folder, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()  # empty: accepted
    assert _build(user_folder, out).exit_code == 0
    assert (out / "manifest.json").exists()
    r = _build(user_folder, out)  # a dataset geoalign wrote: replaced
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "scale3"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")]  # no leftovers
    (out / "scale3" / "mine.txt").write_text("x")  # inside our own folder: ours to replace
    (out / "notes.txt").write_text("x")  # at the top: not ours
    _refused(_build(user_folder, out), "notes.txt")
    assert (out / "notes.txt").exists() and (out / "scale3" / "mine.txt").exists()


def test_dataset_build_keeps_a_folder_named_like_the_old_swap(user_folder, tmp_path):
    out = tmp_path / "ds"
    keep = tmp_path / ".ds.old"
    keep.mkdir()
    (keep / "precious.txt").write_text("x")
    assert _build(user_folder, out).exit_code == 0
    assert _build(user_folder, out).exit_code == 0
    assert (keep / "precious.txt").read_text() == "x"


def test_dataset_build_preregistered_folder_of_the_users_is_refused_and_its_own_replaced(user_folder, tmp_path):
    prereg = tmp_path / "ds.preregistered"
    prereg.mkdir()
    (prereg / "notes.txt").write_text("mine\n")
    (prereg / "0_image.gpkg").write_text("the user's own file of the name geoalign would write\n")
    before = _hashes(prereg)
    args = ["dataset", "build", "--source", user_folder / "image.tif", user_folder / "buildings.geojson",
            "-o", tmp_path / "ds", "--scales", "3", "--no-preview", "--preregister", "global"]
    _refused(_run(args), "did not write", "ds.preregistered")
    assert _hashes(prereg) == before and not (tmp_path / "ds").exists()
    (prereg / "notes.txt").unlink()
    (prereg / "0_image.gpkg").unlink()  # an empty folder: filled
    assert _run(args).exit_code == 0
    assert sorted(p.name for p in prereg.iterdir()) == ["0_image.gpkg", "preregister.json"]
    r = _run(args)  # the folder geoalign wrote: replaced, nothing left beside it
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in prereg.iterdir()) == ["0_image.gpkg", "preregister.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds.preregistered", "p"]


def test_dataset_build_refused_output_leaves_no_preregistered_folder(user_folder, tmp_path):
    """-o holding the user's files is refused before the buildings are pre-registered."""
    args = ["dataset", "build", "--source", user_folder / "image.tif", user_folder / "buildings.geojson",
            "-o", user_folder, "--scales", "3", "--no-preview", "--preregister", "global"]
    before = _hashes(user_folder)
    _refused(_run(args), "holds the input")
    assert _hashes(user_folder) == before
    assert not user_folder.with_name(user_folder.name + ".preregistered").exists()


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_misalign_never_writes_over_its_ground_truth(user_folder, link):
    truth = user_folder / "buildings.geojson"
    out = {"same": truth, "symlink": user_folder / "l.geojson", "hardlink": user_folder / "h.geojson"}[link]
    if link == "symlink":
        out.symlink_to(truth.name)
    elif link == "hardlink":
        os.link(truth, out)
    before = _hashes(user_folder)
    _refused(_run(["misalign", user_folder / "image.tif", truth, "-o", out]), "is the input")
    assert _hashes(user_folder) == before


def test_misalign_field_and_buildings_to_one_file_is_refused(user_folder):
    out = user_folder / "m.geojson"
    _refused(_run(["misalign", user_folder / "image.tif", user_folder / "buildings.geojson", "-o", out,
                   "--field", out]), "same file")
    assert not out.exists()


def test_fetch_from_a_file_never_replaces_it(user_folder):
    before = _hashes(user_folder)
    _refused(_run(["fetch", "imagery", "--bbox", 616800, 3344400, 616950, 3344550, "--bbox-crs", "EPSG:26914",
                   "--source", f"file:{user_folder / 'image.tif'}", "-o", user_folder / "." / "image.tif"]),
             "is the input")
    _refused(_run(["fetch", "buildings", "--bbox", 616800, 3344400, 616950, 3344550, "--bbox-crs", "EPSG:26914",
                   "--source", f"file:{user_folder / 'buildings.geojson'}", "-o", user_folder / "buildings.geojson"]),
             "is the input")
    assert _hashes(user_folder) == before


def _align(folder: Path, buildings: Path, out: Path):
    return _run(["align", folder / "image.tif", buildings, "-o", out, "--method", "global"])


def test_align_never_overwrites_its_own_input_in_the_output_folder(user_folder):
    out = user_folder / "d"
    assert _align(user_folder, user_folder / "buildings.geojson", out).exit_code == 0
    before = _hashes(user_folder)
    _refused(_align(user_folder, out / "aligned.geojson", out), "is the input")
    assert _hashes(user_folder) == before


def test_align_never_replaces_a_users_file_of_an_output_name(user_folder):
    out = user_folder / "d"
    out.mkdir()
    (out / "aligned.gpkg").write_text("my own layer\n")
    _refused(_align(user_folder, user_folder / "buildings.geojson", out), "aligned.gpkg", "not written by geoalign")
    assert (out / "aligned.gpkg").read_text() == "my own layer\n"
    assert sorted(p.name for p in out.iterdir()) == ["aligned.gpkg"]


def test_align_reruns_over_its_own_set_and_a_killed_runs_moves(user_folder):
    out = user_folder / "d"
    assert _align(user_folder, user_folder / "buildings.geojson", out).exit_code == 0
    assert _align(user_folder, user_folder / "buildings.geojson", out).exit_code == 0  # its own set
    # A run killed between its moves: run.json gone, the pending list names what it moved.
    (out / RUN_MANIFEST).unlink()
    (out / PENDING).write_text(json.dumps(["aligned.geojson", "aligned.gpkg", "displacement.tif", "overlay.png"]))
    r = _align(user_folder, user_folder / "buildings.geojson", out)
    assert r.exit_code == 0, r.output
    assert (out / RUN_MANIFEST).exists() and not (out / PENDING).exists()


def test_evaluate_never_writes_over_an_input(user_folder):
    out = user_folder / "e"
    out.mkdir()
    truth = out / "evaluation.json"
    shutil.copy(user_folder / "buildings.geojson", truth)
    before = _hashes(user_folder)
    _refused(_run(["evaluate", truth, truth, "--image", user_folder / "image.tif", "--id-field", "id",
                   "-o", out]), "is the input")
    assert _hashes(user_folder) == before


def test_train_refuses_a_model_folder_of_the_users(user_folder, tmp_path):
    from geoalign.errors import GeoalignError
    from geoalign.model.checkpoint import check_model_dir_writable

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"my": "settings"}')
    with pytest.raises(GeoalignError, match="not written by geoalign"):
        check_model_dir_writable(model)
    shutil.copytree(Path(__file__).resolve().parents[2] / "geoalign" / "model" / "default", tmp_path / "ours")
    check_model_dir_writable(tmp_path / "ours")  # a geoalign model folder: training may replace it
    check_model_dir_writable(tmp_path / "new")
