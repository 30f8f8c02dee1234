"""Where and how the download sources talk to servers: one place, like ``osmnx.settings``.

Everything here is a plain module attribute so that a test (or a user script) can point the
sources at another server or cache folder, e.g. ``settings.overpass_url = "http://127.0.0.1:8080/api"``.
Functions read these values when called, never at import time.
"""

from __future__ import annotations

from pathlib import Path

from geoalign.settings import cache_folder as _default_cache_folder
from geoalign.settings import overpass_url_from_env


#: Folder of the on-disk HTTP cache (tiles, GetMap chunks, Overpass answers, cadaster files).
cache_folder: Path = _default_cache_folder()
#: Read and write the cache; ``False`` always asks the server (and stores nothing).
use_cache: bool = True
#: Seconds to wait for a server to connect and for each read (one value, as requests takes it).
timeout_s: float = 30.0
#: Seconds the whole fetch may take, attempts and pauses included (``None``: no limit); a server
#: that accepts connections and never answers fails within it.
deadline_s: float | None = None
#: Largest answer held in memory (a tile, a GetMap chunk, an Overpass answer), in bytes; a bigger
#: one is refused in one line instead of filling the memory.
max_answer_bytes: int = 512 * 1024 * 1024
#: Largest OSM XML file read once decompressed (``.gz``, ``.bz2``), in bytes; a bigger one is
#: refused in one line (a decompression bomb expands a few kB into gigabytes).
max_decompressed_bytes: int = 2 * 1024 ** 3
#: Largest decompressed/compressed size ratio of such a file once past ``ratio_floor_bytes``
#: (OSM XML compresses about 10-20×; a run of one repeated byte, ~1000×).
max_compression_ratio: float = 200.0
#: Decompressed bytes below which the ratio is not checked (small files compress unevenly).
ratio_floor_bytes: int = 8 * 1024 ** 2
#: Attempts after the first one for connection errors, dropped transfers, 429 and 5xx answers.
max_retries: int = 3
#: First pause between attempts in seconds; it doubles after every failed attempt.
backoff_s: float = 0.5
#: Sent with every request; tile servers (OSM's among them) refuse anonymous clients.
user_agent: str = "geoalign (https://pypi.org/project/geoalign; building-to-imagery alignment)"
#: Parallel downloads for tiles and WMS chunks (I/O bound; politeness limits it).
max_workers: int = 4
#: A fetch needing more XYZ tiles than this stops with an error (a typo in --bbox or --zoom).
max_tiles: int = 50_000
#: Largest WIDTH/HEIGHT of one WMS GetMap request; bigger areas are requested in chunks.
wms_max_size_px: int = 2048
#: Longest wait in seconds for a free Overpass slot (its /status says queries are running or
#: when a slot frees) when the fetch has no deadline; with one, the deadline bounds it too.
overpass_slot_wait_s: float = 120.0
#: Seconds between two looks at a busy Overpass API's /status.
overpass_status_poll_s: float = 5.0
#: Overpass API base URL handed to osmnx (``None``: osmnx's own default; ``$GEOALIGN_OVERPASS_URL``).
overpass_url: str | None = overpass_url_from_env()
