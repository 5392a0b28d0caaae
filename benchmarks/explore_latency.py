"""How long the explorer takes to answer a slider move on a 1024x1024 photo: the page's whole round trip, and its
parts.

    python benchmarks/explore_latency.py [--model faces] [--moves 40]

Starts the explorer's server in this process (as `facealgebra explore` does), opens each photo once through
/api/open (the face found and encoded once), then sends --moves slider moves to /api/edit, each with random
weights on three sliders, and prints the median and 90th percentile of the round trip: the edit (arith's
Arithmetic, then editing.edit_photo: a decode and the paste onto the full photo) and the JPEG the page shows; and
of the CPU time the process spent on it, all threads together (on a shared machine the wall time also counts the
other jobs' turns). Then the parts, timed outside the server: the decode, the paste (photoedit.apply_change) and
the JPEG.
The goal is a median under 100 ms. The photos: generated-14 (a portrait whose face fills the frame, the most
pixels to paste) and the astronaut (a smaller face), both resized to 1024x1024.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facealgebra import editing
from facealgebra.align import photo_input
from facealgebra.data.cache import cache_dir
from facealgebra.explore.controls import find_controls
from facealgebra.explore.server import ExploreServer
from facealgebra.explore.session import Explorer
from facealgebra.images import image_bytes
from facealgebra.photoedit import apply_change

PHOTOS = Path(__file__).resolve().parent.parent / "examples" / "photos"
SIDE = 1024


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", path, body, headers)
    answer = json.loads(connection.getresponse().read())
    connection.close()
    if "error" in answer:
        sys.exit(f"{path}: {answer['error']}")
    return answer


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    return f"median {1000 * statistics.median(ordered):6.1f} ms, 90th percentile " \
           f"{1000 * ordered[int(0.9 * (len(ordered) - 1))]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faces")
    parser.add_argument("--moves", type=int, default=40)
    args = parser.parse_args()

    loaded = editing.load_for_editing(args.model, "auto", tune_steps=None)  # as the explorer loads it
    photos = photo_input(loaded.preprocess, "auto", None, args.model, loaded.training.get("data", ""))
    explorer = Explorer(loaded, photos, find_controls(loaded, cache_dir() / "explore" / loaded.fingerprint[:16]),
                        args.model)
    server = ExploreServer(explorer, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    headers = {"Host": f"127.0.0.1:{server.server_port}"}
    keys = [control.key for control in explorer.controls.sliders]
    rng = np.random.default_rng(0)
    print(f"model {args.model}, {len(keys)} sliders, {args.moves} moves per photo, photos {SIDE}x{SIDE}")
    for name in ("generated-14.jpg", "astronaut.jpg"):
        photo = Image.open(PHOTOS / name).convert("RGB").resize((SIDE, SIDE), Image.Resampling.LANCZOS)
        upload = image_bytes(photo, "PNG")
        opened = post(server.server_port, "/api/open", upload, {**headers, "X-Filename": name})
        round_trips, cpu_times = [], []
        for _ in range(args.moves):
            chosen = rng.choice(keys, size=3, replace=False)
            weights = {str(key): float(np.round(rng.uniform(-1.5, 1.5), 2)) for key in chosen}
            body = json.dumps({"session": opened["session"], "weights": weights}).encode()
            started, cpu_started = time.perf_counter(), time.process_time()
            post(server.server_port, "/api/edit", body, {**headers, "Content-Type": "application/json"})
            round_trips.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        print(f"{name} at {SIDE}x{SIDE}: slider move, round trip: {summary(round_trips)}")
        # every thread's CPU time (the server's and this client's): what a move costs the machine, whatever else
        # shares its cores
        print(f"  {'CPU time':>18}: {summary(cpu_times)}")

        session = server.sessions[opened["session"]]
        _, edited, _ = explorer.strokes(session, {keys[0]: 1.0})[0]
        parts: dict[str, list[float]] = {"decode": [], "paste": [], "JPEG for the page": []}
        for _ in range(args.moves):
            started = time.perf_counter()
            change = editing.changes(loaded, session.code, edited, session.placement)[0]
            pasted = time.perf_counter()
            result = apply_change(session.photo, change, session.placement)
            encoded = time.perf_counter()
            image_bytes(result, "JPEG")
            done = time.perf_counter()
            for part, seconds in zip(parts, (pasted - started, encoded - pasted, done - encoded)):
                parts[part].append(seconds)
        for part, times in parts.items():
            print(f"  {part:>18}: {summary(times)}")
    server.shutdown()


if __name__ == "__main__":
    main()
