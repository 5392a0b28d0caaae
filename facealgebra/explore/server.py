"""The explorer's local web server: the standard library's ThreadingHTTPServer, on 127.0.0.1 only.

Why the standard library: the page needs three static files and a few JSON routes, which http.server serves with
nothing to install or keep up to date and no event loop of its own beside torch. Flask would add a handful of
packages for routing we do not need; Gradio, a large stack and a front end of its own. http.server is not made
for a network, and this one never meets one: it listens on 127.0.0.1, answers only requests whose Host header
names 127.0.0.1 or localhost (so a web site cannot reach it by DNS rebinding), serves only the files named in
ASSETS (no request path is ever joined onto a folder), and caps uploads by bytes and by the 50-Mpx rule.

Routes (JSON in and out; a failure answers {"error": message} with a 4xx status, and the server goes on):
  GET  /, /app.js, /style.css      the page
  GET  /api/info                   the model, the sliders, the example photos, the photo named on the command line
  POST /api/open                   a photo for this tab: ?example=NAME, ?given=1, or the photo's bytes as the body
                                   (its name URL-encoded in X-Filename); answers a session key, its faces, the command
  POST /api/face {session, face}   edit another face of a group photo
  POST /api/edit {session, weights}            the edited photo (a JPEG to look at) and its command
  POST /api/strip {session, weights, key}      one slider's traversal strip
  GET  /api/download?session=S&weights=JSON    the edited photo at its own size, PNG
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import signal
import threading
import time
import traceback
import webbrowser
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, quote, unquote

from PIL import Image

from facealgebra.align import PhotoInput
from facealgebra.checkpoint import LoadedModel
from facealgebra.errors import FaceAlgebraError
from facealgebra.explore.controls import find_controls
from facealgebra.explore.session import Explorer, Session
from facealgebra.images import MAX_PIXELS, decode_image, image_bytes, list_images, load_image, to_pil

HOST = "127.0.0.1"
ASSETS = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # a 50-Mpx photo as a JPEG is well under this; a bigger body is no photo here
MAX_JSON_BYTES = 64 * 1024
MAX_SESSIONS = 8  # tabs whose photos stay in memory; the oldest is let go first
PREVIEW_SIDE = 2048  # the page looks at the edit this large at most (the download has the photo's own size)
EXAMPLE_PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"  # a source checkout's
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class ClientError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class ExploreServer(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for a tab's open connection

    def __init__(self, explorer: Explorer, port: int, given: Path | None = None):
        super().__init__((HOST, port), Handler)
        self.explorer, self.given = explorer, given
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.sessions_lock = threading.Lock()
        self.examples = {path.name: path for path in list_images(EXAMPLE_PHOTOS)} if EXAMPLE_PHOTOS.is_dir() else {}
        static = resources.files("facealgebra.explore") / "static"
        self.assets = {route: ((static / name).read_bytes(), kind) for route, (name, kind) in ASSETS.items()}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_port}/"

    def add(self, session: Session) -> str:
        key = secrets.token_urlsafe(16)
        with self.sessions_lock:
            self.sessions[key] = session
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        return key

    def session(self, key: object) -> Session:
        with self.sessions_lock:
            if not isinstance(key, str) or key not in self.sessions:
                raise ClientError(HTTPStatus.GONE, "this tab's photo is no longer open (the server was restarted, "
                                  f"or more than {MAX_SESSIONS} tabs opened photos since): open it again")
            self.sessions.move_to_end(key)
            return self.sessions[key]


class Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    server_version = "facealgebra-explore"
    disable_nagle_algorithm = True  # else an answer's last segment can wait 40 ms for the page's delayed ACK

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the base class's name)
        pass  # a line per slider move would bury the URL; failures are said in handle_errors

    # ---- dispatch ----------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802  (http.server's names)
        self.handle_errors(self.get)

    def do_POST(self) -> None:  # noqa: N802
        self.handle_errors(self.post)

    def handle_errors(self, route: Callable[[str, dict[str, list[str]]], None]) -> None:
        try:
            host = self.headers.get("Host", "")
            if host not in (f"{HOST}:{self.server.server_port}", f"localhost:{self.server.server_port}"):
                raise ClientError(HTTPStatus.FORBIDDEN, f"this server answers requests for {self.server.url} only")
            path, _, query = self.path.partition("?")
            route(path, parse_qs(query))
        except ClientError as exc:
            self.send_json({"error": str(exc)}, exc.status)
        except FaceAlgebraError as exc:
            self.send_json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the tab went away
        except Exception as exc:  # noqa: BLE001  (our bug: said here and on the page; the server goes on)
            traceback.print_exc()
            self.send_json({"error": f"{type(exc).__name__}: {exc}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def get(self, path: str, query: dict[str, list[str]]) -> None:
        if path in self.server.assets:
            body, kind = self.server.assets[path]
            self.send_bytes(body, kind)
        elif path == "/api/info":
            self.send_json(self.info())
        elif path == "/api/download":
            session = self.server.session(first(query, "session"))
            try:
                weights = parse_weights(json.loads(first(query, "weights") or "{}"))
            except ValueError:
                raise ClientError(HTTPStatus.BAD_REQUEST, "weights: not JSON") from None
            edited = self.server.explorer.edit(session, weights)
            self.send_bytes(image_bytes(edited, "PNG"), "image/png",
                            {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(session.output)}"})
        else:
            raise ClientError(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def post(self, path: str, query: dict[str, list[str]]) -> None:
        explorer = self.server.explorer
        if path == "/api/open":
            session = explorer.open(*self.photo(query))
            self.send_json(self.opened(self.server.add(session), session))
            return
        if path not in ("/api/face", "/api/edit", "/api/strip"):
            raise ClientError(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        request = self.json_body()
        session = self.server.session(request.get("session"))
        weights = parse_weights(request.get("weights", {}))
        if path == "/api/face":
            face = request.get("face")
            if not isinstance(face, int):
                raise ClientError(HTTPStatus.BAD_REQUEST, "face: a number from 1")
            explorer.choose(session, face)
            self.send_json({"chosen": session.chosen, "command": explorer.command(session, weights)})
        elif path == "/api/edit":
            started = time.perf_counter()
            edited = explorer.edit(session, weights)
            self.send_json({"image": preview(edited), "command": explorer.command(session, weights),
                            "ms": round(1000 * (time.perf_counter() - started))})
        else:
            tiles, values = explorer.strip(session, weights, str(request.get("key")))
            self.send_json({"image": data_url(image_bytes(to_pil(tiles), "PNG"), "image/png"), "values": values})

    # ---- requests ----------------------------------------------------------------------------------------------
    def info(self) -> dict:
        explorer = self.server.explorer
        return {"model": explorer.model, "directions_from": explorer.controls.directions_from,
                "sliders": [{"key": c.key, "label": c.label, "group": c.group, "limit": c.limit}
                            for c in explorer.controls.sliders],
                "examples": sorted(self.server.examples), "given": self.server.given is not None,
                "max_bytes": MAX_UPLOAD_BYTES, "max_pixels": MAX_PIXELS}

    def photo(self, query: dict[str, list[str]]) -> tuple[Image.Image, str]:
        """The photo to open and the name the command gives it: an example's or the given photo's path, or an
        upload's file name (the command is then run where that file is)."""
        example = first(query, "example")
        if example is not None:
            if example not in self.server.examples:
                raise ClientError(HTTPStatus.NOT_FOUND, f"no example photo {example!r}")
            path = self.server.examples[example]
            return load_image(path), str(path)
        if first(query, "given") is not None:
            if self.server.given is None:
                raise ClientError(HTTPStatus.NOT_FOUND, "no photo was named on the command line")
            return load_image(self.server.given), str(self.server.given)
        name = upload_name(unquote(self.headers.get("X-Filename", "")))
        return decode_image(io.BytesIO(self.body(MAX_UPLOAD_BYTES, f"{name} is")), name), name

    def body(self, limit: int, what: str) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise ClientError(HTTPStatus.LENGTH_REQUIRED, "the request has no Content-Length") from None
        if length > limit:
            self.close_connection = True  # its body is left unread
            raise ClientError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              f"{what} {length / 2**20:.1f} MB, over the {limit / 2**20:g} MB the explorer takes; "
                              "downscale it first")
        if length <= 0:
            raise ClientError(HTTPStatus.BAD_REQUEST, f"{what} empty")
        return self.rfile.read(length)

    def json_body(self) -> dict:
        try:
            request = json.loads(self.body(MAX_JSON_BYTES, "the request is"))
        except (ValueError, UnicodeDecodeError):
            raise ClientError(HTTPStatus.BAD_REQUEST, "the request is not JSON") from None
        if not isinstance(request, dict):
            raise ClientError(HTTPStatus.BAD_REQUEST, "the request is not a JSON object")
        return request

    def opened(self, key: str, session: Session) -> dict:
        return {"session": key, "name": session.name, "width": session.photo.width, "height": session.photo.height,
                "faces": [face.box.round(1).tolist() for face in session.faces if face is not None],
                "chosen": session.chosen, "image": preview(session.photo), "output": session.output,
                "command": self.server.explorer.command(session, {})}

    # ---- answers -----------------------------------------------------------------------------------------------
    def send_json(self, payload: dict, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_bytes(json.dumps(payload).encode(), "application/json", status=status)

    def send_bytes(self, body: bytes, kind: str, headers: dict[str, str] | None = None,
                   status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": kind, "Content-Length": str(len(body)), **SECURITY_HEADERS,
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


# ---- helpers ---------------------------------------------------------------------------------------------------
def first(query: dict[str, list[str]], key: str) -> str | None:
    return query[key][0] if key in query else None


def parse_weights(weights: object) -> dict[str, float]:
    """{slider key: weight} from the page; the explorer checks the keys' ranges."""
    if not isinstance(weights, dict) or not all(isinstance(value, (int, float)) for value in weights.values()):
        raise ClientError(HTTPStatus.BAD_REQUEST, "weights: an object of slider keys and numbers")
    return {str(key): float(value) for key, value in weights.items()}


def upload_name(name: str) -> str:
    """The name an upload keeps in the command: its file name alone, made a plain expression word (`./` before a
    sign, which arith would read as one)."""
    base = Path(name.replace("\\", "/")).name
    if not base or "*" in base:  # arith would read the part before a * as a weight
        base = "photo.png"
    return f"./{base}" if base[0] in "+-" else base


def preview(photo: Image.Image) -> str:
    """A JPEG of the photo for the page to show (shrunk when over PREVIEW_SIDE)."""
    if max(photo.size) > PREVIEW_SIDE:
        photo = photo.copy()
        photo.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BILINEAR)
    return data_url(image_bytes(photo, "JPEG"), "image/jpeg")


def data_url(data: bytes, kind: str) -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def serve(explorer: Explorer, port: int, given: Path | None, open_browser: bool, say: Callable[[str], None]) -> None:
    """Serve the page until Ctrl-C; the URL goes to stdout (it is what the command gives)."""
    # Ctrl-C (SIGINT) stops it even where a shell started it with SIGINT ignored (`facealgebra explore &` in a
    # script, or a test suite run as a background job), as train's stop_on_termination_signals does for a run
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server = ExploreServer(explorer, port, given)
    except OSError as exc:
        raise FaceAlgebraError(f"--port {port}: cannot listen on {HOST}:{port} ({exc.strerror or exc}); give "
                               "another port, or 0 for any free one") from None
    try:
        print(server.url, flush=True)
        say(f"explore: the page is at {server.url} (this machine only); Ctrl-C stops")
        if open_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        say("explore: stopped")
    finally:
        server.server_close()


def run(loaded: LoadedModel, photos: PhotoInput, model: str, port: int, given: Path | None, open_browser: bool,
        say: Callable[[str], None]) -> None:
    """`facealgebra explore`: find the model's sliders (once per model, then from the cache), then serve."""
    from facealgebra.data.cache import cache_dir

    say("explore: finding the sliders (the first time for a model, this encodes its training images)")
    controls = find_controls(loaded, cache_dir() / "explore" / loaded.fingerprint[:16])
    serve(Explorer(loaded, photos, controls, model), port, given, open_browser, say)
