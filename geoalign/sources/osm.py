"""OpenStreetMap buildings through osmnx: from the Overpass API (``osm``) or an OSM XML file
(``osm-xml:<path>``, plain, ``.bz2`` or ``.gz``).

Both keep what osmnx builds for ``tags={"building": True}``: closed ways as Polygons and
multipolygon relations as (Multi)Polygons with their holes, with every OSM tag as a column and the
OSM identity as ``osm_id`` (``"way/123"``), ``element`` and ``id``. Points, lines and
``building=no`` are dropped; geometries are repaired as :func:`geoalign.io.vectors.clean_buildings`
does for every source.

Clipped extracts. An extract cut out of the planet (like the Helsinki test file) keeps relations
whose member ways, or the ways' nodes, were left outside. osmnx builds such a way as an empty
line, and a multipolygon relation using it then fails inside shapely (``EmptyPartError: Can't
create MultiLineString with empty component``), losing the whole file. So an XML file is first
checked element by element: building relations with a missing or incomplete member way, and
building ways with missing nodes, are skipped with one warning that counts them, and a copy
holding only the complete buildings (and the nodes and member ways they need) is handed to
osmnx. That copy is also much smaller than the extract, which makes osmnx faster.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import math
import re
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import geopandas as gpd
import requests
from shapely.geometry import box

from geoalign.errors import DownloadError, EmptyInputError, InputFileError, first_line
from geoalign.io.vectors import clean_buildings
from geoalign.sources import http, settings

log = logging.getLogger(__name__)

BUILDING_TAGS: dict[str, bool] = {"building": True}
#: Relation types osmnx turns into areas (``osmnx.features._RELATION_TYPES``).
AREA_RELATION_TYPES = frozenset({"multipolygon", "boundary"})
#: Least time given to an Overpass query, in seconds (osmnx's default: big areas take long).
OVERPASS_TIMEOUT_S = 180
#: How many skipped ids a warning lists before "...".
MAX_IDS_IN_WARNING = 10


class ClippedOsmWarning(UserWarning):
    """Some OSM buildings were skipped because the extract lacks parts of them."""


@dataclass
class XmlCheck:
    """What :func:`keep_complete_buildings` found in an OSM XML file."""

    n_building_ways: int = 0
    n_building_relations: int = 0
    skipped_ways: list[str] = field(default_factory=list)
    skipped_relations: list[str] = field(default_factory=list)

    def message(self, source: str) -> str | None:
        if not (self.skipped_ways or self.skipped_relations):
            return None
        ids = [f"relation/{i}" for i in self.skipped_relations] + [f"way/{i}" for i in self.skipped_ways]
        shown = ", ".join(ids[:MAX_IDS_IN_WARNING]) + (", ..." if len(ids) > MAX_IDS_IN_WARNING else "")
        return (
            f"{source}: skipped {len(self.skipped_relations)} of {self.n_building_relations} "
            f"building relations and {len(self.skipped_ways)} of {self.n_building_ways} building "
            f"ways whose member ways or nodes are missing from the extract (clipped at its edge): "
            f"{shown}"
        )


# --- Overpass ---------------------------------------------------------------------------------
def buildings_from_bbox(bbox_wgs84: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """Buildings intersecting a (W, S, E, N) lon/lat box, from the Overpass API (osmnx)."""
    with osmnx_configured() as ox:
        url = ox.settings.overpass_url.rstrip("/")
        wait_for_overpass_slot(url)
        try:
            gdf = ox.features_from_bbox(bbox_wgs84, tags=BUILDING_TAGS)
        except ox._errors.InsufficientResponseError:
            raise EmptyInputError(
                f"OpenStreetMap has no buildings in the bbox {bbox_wgs84} (lon/lat); check --bbox "
                "and --bbox-crs."
            ) from None
        except ox._errors.ResponseStatusCodeError as err:
            raise DownloadError(f"the Overpass API at {url} failed: {first_line(err)}") from None
        except requests.exceptions.RequestException as err:
            raise DownloadError(
                f"could not download from the Overpass API at {url}: {http._reason(err)}; check "
                "the network connection, or use osm-xml:<file>."
            ) from None
    return tidy_osm_buildings(gdf, source=f"Overpass {url}")


def wait_for_overpass_slot(url: str) -> None:
    """Wait until the Overpass API at ``url`` offers a query slot, within
    ``settings.overpass_slot_wait_s`` and the fetch's deadline, or fail in one line.

    Why not osmnx's own wait: it sleeps 60 s when /status is unreachable (then fails with a long
    traceback), polls a server answering "Currently running queries" every 5 s without end, and
    sleeps until any announced slot however far. Its wait is switched off
    (:func:`osmnx_configured`) and this one asks /status through geoalign's retrying client.
    """
    limit_s = float(settings.overpass_slot_wait_s)
    left = http.remaining_s()
    if left is not None:
        limit_s = min(limit_s, max(0.0, left))
    end = time.monotonic() + limit_s
    while True:
        status = http.get(f"{url}/status", missing_ok=True, use_cache=False).content
        wait_s, why = overpass_wait_s(status)
        if wait_s <= 0:
            return
        if time.monotonic() + wait_s > end:
            raise DownloadError(
                f"the Overpass API at {url} has no free query slot ({why}) and would not free one "
                f"within {limit_s:g} s (--deadline, settings.overpass_slot_wait_s); try again later.")
        time.sleep(wait_s)


_SLOTS_NOW = re.compile(r"^(\d+) slots? available now", re.MULTILINE)
_SLOT_AFTER = re.compile(r"^Slot available after: \S+, in (-?\d+) seconds?", re.MULTILINE)


def overpass_wait_s(status: bytes | None) -> tuple[float, str]:
    """Seconds to wait before a query, from an Overpass /status body, and why: 0 with a free
    slot (or no readable status: the query itself then says what is wrong), the soonest announced
    slot, or ``settings.overpass_status_poll_s`` while only running queries are listed."""
    text = (status or b"").decode("utf-8", "replace")
    now = _SLOTS_NOW.search(text)
    if now and int(now.group(1)) > 0:
        return 0.0, "slots available"
    after = [int(s) for s in _SLOT_AFTER.findall(text)]
    if after:
        return max(1.0, float(min(after))), f"next slot in {min(after)} s"
    if "Currently running queries" in text:
        return float(settings.overpass_status_poll_s), "every slot is running a query"
    return 0.0, "status not readable"


def _refuse_busy(response: requests.Response, *args, **kwargs) -> requests.Response:
    """A 429 or 504 answer fails in one line: osmnx would sleep 55 s and ask again without end."""
    if response.status_code in (429, 504):
        raise DownloadError(f"the Overpass API at {response.url} is busy ({response.status_code} "
                            f"{response.reason}); try again later.")
    return response


@contextlib.contextmanager
def osmnx_configured() -> Iterator:
    """osmnx with geoalign's cache folder, timeout, user agent (and Overpass URL when set),
    restored afterwards so that no global setting leaks out."""
    import osmnx as ox

    names = ("cache_folder", "use_cache", "requests_timeout", "http_user_agent", "overpass_url",
             "log_console", "requests_kwargs", "overpass_rate_limit")
    saved = {name: getattr(ox.settings, name) for name in names}
    ox.settings.cache_folder = str(Path(settings.cache_folder) / "osmnx")
    ox.settings.use_cache = settings.use_cache
    # also Overpass's own [timeout:N] of the query, which must be an integer of seconds
    timeout_s = max(settings.timeout_s, OVERPASS_TIMEOUT_S)
    left = http.remaining_s()
    if left is not None:  # the fetch's deadline bounds the wait too
        timeout_s = max(1.0, min(timeout_s, left))
    ox.settings.requests_timeout = int(math.ceil(timeout_s))
    # answers read through geoalign's size cap and deadline
    ox.settings.requests_kwargs = {**saved["requests_kwargs"],
                                   "hooks": {"response": [_refuse_busy, http.bounded_body_hook]}}
    ox.settings.overpass_rate_limit = False  # wait_for_overpass_slot waits instead, bounded
    ox.settings.http_user_agent = settings.user_agent
    ox.settings.log_console = False
    if settings.overpass_url:
        ox.settings.overpass_url = settings.overpass_url
    try:
        yield ox
    finally:
        for name, value in saved.items():
            setattr(ox.settings, name, value)


# --- OSM XML ----------------------------------------------------------------------------------
def buildings_from_xml(
    path: str | Path, bbox_wgs84: tuple[float, float, float, float] | None = None
) -> gpd.GeoDataFrame:
    """Buildings of an OSM XML file (those intersecting ``bbox_wgs84`` when given); buildings the
    extract holds only in part are skipped with a :class:`ClippedOsmWarning`."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="geoalign-osm-") as tmp_dir:
        complete = Path(tmp_dir) / "buildings.osm"
        check = keep_complete_buildings(path, complete)
        message = check.message(str(path))
        if message:
            warnings.warn(message, ClippedOsmWarning, stacklevel=2)
        if check.n_building_ways + check.n_building_relations == len(check.skipped_ways) + len(check.skipped_relations):
            raise EmptyInputError(f"{path}: no complete building in this OSM file.")
        with osmnx_configured() as ox:
            polygon = box(*bbox_wgs84) if bbox_wgs84 is not None else None
            try:
                gdf = ox.features_from_xml(complete, polygon=polygon, tags=BUILDING_TAGS)
            except ox._errors.InsufficientResponseError:
                raise EmptyInputError(
                    f"{path}: no buildings in the bbox {bbox_wgs84} (lon/lat); check --bbox."
                ) from None
    return tidy_osm_buildings(gdf, source=str(path))


def _open_xml(path: Path):
    if not path.is_file():
        raise InputFileError(f"{path}: no such OSM XML file.")
    if path.suffix == ".bz2":
        return BoundedDecompression(bz2.open(path, "rb"), path)
    if path.suffix == ".gz":
        return BoundedDecompression(gzip.open(path, "rb"), path)
    return open(path, "rb")


class BoundedDecompression:
    """A decompressing reader that stops with a one-line :class:`InputFileError` once it has
    produced more than ``settings.max_decompressed_bytes``, or more than
    ``settings.max_compression_ratio`` times the compressed file's size (past
    ``settings.ratio_floor_bytes``): a decompression bomb is refused after reading at most the cap,
    never expanded whole into memory."""

    def __init__(self, stream, path: Path) -> None:
        self._stream, self._path = stream, path
        self._compressed_bytes = max(1, path.stat().st_size)
        self._produced_bytes = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:  # whole-file reads go by chunks, so the cap holds
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        data = self._stream.read(size)
        self._produced_bytes += len(data)
        self._check()
        return data

    def _check(self) -> None:
        limit = int(settings.max_decompressed_bytes)
        ratio = self._produced_bytes / self._compressed_bytes
        if self._produced_bytes > limit:
            raise InputFileError(
                f"{self._path}: decompresses to more than {limit / 1e6:g} MB; refused (a decompression "
                "bomb, or an extract too big to read whole: cut a smaller one).")
        if self._produced_bytes > settings.ratio_floor_bytes and ratio > settings.max_compression_ratio:
            raise InputFileError(
                f"{self._path}: decompresses to more than {settings.max_compression_ratio:g} times its "
                f"size ({self._compressed_bytes} bytes give over {self._produced_bytes} bytes); refused "
                "as a decompression bomb (OSM XML compresses 10-20 times).")

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> "BoundedDecompression":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def keep_complete_buildings(path: Path, out_path: Path) -> XmlCheck:
    """Write to ``out_path`` the OSM XML of the buildings of ``path`` that are complete in it:
    building ways whose nodes are all present, and building multipolygon relations whose member
    ways are all present and complete; plus the nodes and member ways those need."""
    try:
        with _open_xml(path) as fh:
            refuse_entities(path)
            root = ET.parse(fh).getroot()
    except (ET.ParseError, OSError, EOFError) as err:
        raise InputFileError(f"{path}: not a readable OSM XML file ({first_line(err)}).") from None
    if root.tag != "osm":
        raise InputFileError(f"{path}: not an OSM XML file (root element <{root.tag}>).")

    node_ids = {n.get("id") for n in root.iter("node")}
    ways = {w.get("id"): w for w in root.iter("way")}
    complete = {
        wid: len(refs) >= 2 and all(r in node_ids for r in refs)
        for wid, refs in ((wid, [nd.get("ref") for nd in w.iter("nd")]) for wid, w in ways.items())
    }
    check = XmlCheck()
    keep_ways: set[str] = set()
    keep_relations = []
    for rel in root.iter("relation"):
        tags = _tags(rel)
        if "building" not in tags or tags.get("type") not in AREA_RELATION_TYPES:
            continue
        check.n_building_relations += 1
        members = [m.get("ref") for m in rel.iter("member") if m.get("type") == "way"]
        if not members or not all(complete.get(ref, False) for ref in members):
            check.skipped_relations.append(rel.get("id"))
            continue
        keep_relations.append(rel)
        keep_ways.update(members)
    for wid, way in ways.items():
        if "building" in _tags(way):
            check.n_building_ways += 1
            if complete[wid]:
                keep_ways.add(wid)
            else:
                check.skipped_ways.append(wid)
    keep_nodes = {nd.get("ref") for wid in keep_ways for nd in ways[wid].iter("nd")}

    out = ET.Element("osm", {"version": root.get("version", "0.6"),
                             "generator": f"geoalign (complete buildings of {path.name})"})
    out.extend(root.findall("bounds"))
    # nodes only as coordinates: their own tags (entrances tagged building=entrance, ...) would
    # come back as point features
    out.extend(ET.Element("node", {k: n.get(k) for k in ("id", "lat", "lon")})
               for n in root.iter("node") if n.get("id") in keep_nodes)
    out.extend(w for wid, w in ways.items() if wid in keep_ways)
    out.extend(keep_relations)
    ET.ElementTree(out).write(out_path, encoding="utf-8", xml_declaration=True)
    log.info("%s: %d building ways and %d building relations complete", path,
             check.n_building_ways - len(check.skipped_ways),
             check.n_building_relations - len(check.skipped_relations))
    return check


class _PrologEnd(Exception):
    """The root element starts: the DTD, if any, is behind."""


def refuse_entities(path: Path) -> None:
    """Refuse an XML file whose DTD declares entities: OSM files declare none, and a file that
    does is an entity-expansion bomb ("billion laughs") or reaches for other files (external
    entities). Only the prolog is read (the DTD precedes the root element)."""
    parser = xml.parsers.expat.ParserCreate()

    def refuse(name, *args) -> None:
        raise InputFileError(f"{path}: declares the XML entity {name!r}; OSM files declare none, "
                             "so it is refused (entity expansion, external files).")

    def root_starts(*args) -> None:
        raise _PrologEnd()

    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = root_starts
    with _open_xml(path) as fh:
        try:
            while chunk := fh.read(1 << 16):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except _PrologEnd:
            return
        except xml.parsers.expat.ExpatError:
            return  # reported by the real parse, with its line and column


def _tags(element: ET.Element) -> dict[str, str]:
    return {t.get("k"): t.get("v") for t in element.findall("tag")}


# --- common -----------------------------------------------------------------------------------
def tidy_osm_buildings(gdf: gpd.GeoDataFrame, *, source: str) -> gpd.GeoDataFrame:
    """osmnx's (element, id)-indexed features → flat columns ``osm_id``, ``element``, ``id`` + tags;
    polygons only, ``building=no`` dropped, columns osmnx adds that are not tags removed."""
    gdf = gdf.reset_index()
    gdf.insert(0, "osm_id", gdf["element"].astype(str) + "/" + gdf["id"].astype(str))
    if "building" in gdf.columns:
        gdf = gdf[gdf["building"].astype(str).str.lower() != "no"]
    for column in list(gdf.columns):
        if column == gdf.geometry.name:
            continue
        values = gdf[column].dropna()
        if len(values) and values.map(lambda v: isinstance(v, (list, dict, tuple, set))).any():
            gdf = gdf.drop(columns=column)  # e.g. member lists: not tags, and no GPKG type
    gdf = clean_buildings(gpd.GeoDataFrame(gdf, geometry=gdf.geometry.name, crs=gdf.crs),
                          source=source)
    return gdf.reset_index(drop=True)
