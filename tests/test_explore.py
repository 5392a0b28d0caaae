"""`facealgebra explore`: the real server in a subprocess (the bundled `faces` model), spoken to over HTTP, and its
page driven in a real headless browser (Debian's chromium and chromium-driver, through selenium)."""

from __future__ import annotations

import http.client
import io
import json
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, assert_usage_error, run_cli

PHOTOS = REPO / "examples" / "photos"
CHROMEDRIVER = "/usr/bin/chromedriver"


# ---- the server ------------------------------------------------------------------------------------------------
class Server:
    """`facealgebra explore --no-browser --port 0` in a subprocess, and requests to it."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen([sys.executable, "-m", "facealgebra", "explore", "--no-browser", "--port",
                                         "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True).start()
        self.url = self.process.stdout.readline().strip()  # the first line once it listens (or "" if it died)
        assert self.url.startswith("http://127.0.0.1:"), "".join(self.stderr) or self.process.wait(5)
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                host: str | None = None) -> tuple[int, bytes]:
        """The status and body of one request, its path sent exactly as given."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.putrequest(method, path, skip_host=True)
            for name, value in {"Host": host or f"127.0.0.1:{self.port}", **(headers or {})}.items():
                connection.putheader(name, value)
            if body is not None and "Content-Length" not in (headers or {}):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, payload: dict | bytes | None = None, **headers: str) -> tuple[int, dict]:
        body = payload if isinstance(payload, bytes) or payload is None else json.dumps(payload).encode()
        status, answer = self.request(method, path, body, {key.replace("_", "-"): value
                                                           for key, value in headers.items()})
        return status, json.loads(answer)

    def upload(self, data: bytes, name: str) -> tuple[int, dict]:
        return self.json("POST", "/api/open", data, X_Filename=name)

    def stop(self) -> subprocess.CompletedProcess:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(30)
        return subprocess.CompletedProcess(self.process.args, code, self.process.stdout.read(), "".join(self.stderr))


@pytest.fixture(scope="module")
def server():
    running = Server()
    yield running
    running.stop()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels and holds one row: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4)) + \
        chunk(b"IEND", b"")


def pixels(data: bytes | Path) -> np.ndarray:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        return np.asarray(image.convert("RGB"))


def run_command(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a command the page shows (`facealgebra arith ...`) through this Python's facealgebra."""
    words = shlex.split(command)
    assert words[:2] == ["facealgebra", "arith"], command
    result = run_cli(*words[1:], cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


# ---- safety ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
                                  "//etc/passwd", "/app.js/../../../etc/passwd", "/%252e%252e/etc/passwd",
                                  "/static/index.html", "/explore/server.py", "/api/../../etc/passwd"])
def test_no_request_path_reaches_files_beyond_the_assets(server, path):
    status, body = server.request("GET", path)
    assert status == 404 and b"root:" not in body and b"import" not in body, (status, body[:200])


def test_serves_its_own_assets(server):
    for path, marker in [("/", b"<title>facealgebra explore"), ("/app.js", b"use strict"), ("/style.css", b":root")]:
        status, body = server.request("GET", path)
        assert status == 200 and marker in body, path
        assert b"http://" not in body and b"https://" not in body, f"{path} reaches outside the server"


def test_answers_only_requests_for_itself(server):
    status, body = server.request("GET", "/api/info", host="attacker.example")  # DNS rebinding's Host
    assert status == 403 and b"answers requests for" in body


def test_listens_on_loopback_only(server):
    """The listening socket's own address, as Linux lists it: 127.0.0.1, never 0.0.0.0."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("no /proc/net/tcp to read the listening address from")
    listening = [line.split()[1] for line in table.read_text().splitlines()[1:]
                 if line.split()[3] == "0A" and int(line.split()[1].split(":")[1], 16) == server.port]
    assert listening == [f"0100007F:{server.port:04X}"]


# ---- bad input -------------------------------------------------------------------------------------------------
def test_a_file_that_is_no_image_is_named_in_the_message(server):
    status, answer = server.upload(b"just some text, not a photo", "notes.jpg")
    assert status == 400 and answer["error"] == "notes.jpg: not an image Pillow can read"


def test_a_photo_with_no_face_says_so(server):
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (120, 160, 200)).save(buffer, "PNG")
    status, answer = server.upload(buffer.getvalue(), "sky.png")
    assert status == 400 and answer["error"] == "no face found in sky.png"


def test_a_huge_declared_size_is_refused_by_the_pixel_rule(server):
    status, answer = server.upload(png_declaring(20_000, 20_000), "bomb.png")
    assert status == 400 and "bomb.png: image is too large (over 50,000,000 pixels)" in answer["error"]


def test_a_body_over_the_byte_limit_is_refused_unread(server):
    status, body = server.request("POST", "/api/open", b"", {"X-Filename": "big.jpg",
                                                             "Content-Length": str(500 * 2**20)})
    assert status == 413 and "500.0 MB, over the 64 MB" in json.loads(body)["error"]


def test_the_server_keeps_running_after_bad_input(server):
    server.upload(b"\x89PNG\r\n\x1a\nbroken", "broken.png")
    status, answer = server.json("GET", "/api/info")
    assert status == 200 and answer["sliders"]


def test_bad_command_line_input_is_one_error_line(tmp_path):
    assert_usage_error(run_cli("explore", str(tmp_path / "absent.jpg"), "--no-browser"), "absent.jpg", "no such file")
    assert_usage_error(run_cli("explore", "--port", "70000", "--no-browser"), "--port 70000")


# ---- sessions and edits ----------------------------------------------------------------------------------------
def test_two_tabs_keep_their_own_photos(server):
    first = server.upload((PHOTOS / "generated-14.jpg").read_bytes(), "generated-14.jpg")[1]
    second = server.upload((PHOTOS / "astronaut.jpg").read_bytes(), "astronaut.jpg")[1]
    assert first["session"] != second["session"]
    weights = {"z1-pc1": 2.0}
    for opened, photo in [(first, "generated-14.jpg"), (second, "astronaut.jpg"), (first, "generated-14.jpg")]:
        status, answer = server.json("POST", "/api/edit", {"session": opened["session"], "weights": weights})
        assert status == 200 and answer["command"].startswith(f"facealgebra arith {photo} + ")
        status, body = server.request("GET", "/api/download?" + urlencode({"session": opened["session"],
                                                                           "weights": json.dumps(weights)}))
        with Image.open(PHOTOS / photo) as original:
            assert status == 200 and pixels(body).shape[:2] == (original.height, original.width)


def test_an_unknown_session_asks_to_open_the_photo_again(server):
    status, answer = server.json("POST", "/api/edit", {"session": "not-a-session", "weights": {}})
    assert status == 410 and "open it again" in answer["error"]


def test_a_slider_outside_its_range_or_unknown_is_refused(server):
    opened = server.upload((PHOTOS / "generated-14.jpg").read_bytes(), "generated-14.jpg")[1]
    status, answer = server.json("POST", "/api/edit", {"session": opened["session"], "weights": {"z1-pc1": 50}})
    assert status == 400 and "slider z1-pc1 at 50.0: it runs from -3 to 3" in answer["error"]
    status, answer = server.json("POST", "/api/edit", {"session": opened["session"], "weights": {"z9-pc1": 1}})
    assert status == 400 and answer["error"] == "no slider 'z9-pc1'"


def test_the_command_of_an_edit_of_a_group_photo_gives_the_downloaded_pixels(server, tmp_path):
    """The second face of three, two sliders: the page's download and its arith command agree pixel for pixel."""
    shutil.copy(PHOTOS / "group.jpg", tmp_path / "group.jpg")
    opened = server.upload((tmp_path / "group.jpg").read_bytes(), "group.jpg")[1]
    assert len(opened["faces"]) == 3
    weights = {"z4-pc1": -1.5, "z2-pc2": 2.25}
    status, chosen = server.json("POST", "/api/face", {"session": opened["session"], "face": 2, "weights": weights})
    assert status == 200 and "--face 2" in chosen["command"]
    status, body = server.request("GET", "/api/download?" + urlencode({"session": opened["session"],
                                                                       "weights": json.dumps(weights)}))
    assert status == 200
    run_command(chosen["command"], tmp_path)
    edited = pixels(tmp_path / "group-edited.png")
    assert np.array_equal(pixels(body), edited)
    original = pixels(tmp_path / "group.jpg")
    changed = np.abs(edited.astype(int) - original).sum(axis=2) > 0
    columns = np.flatnonzero(changed.any(axis=0))
    assert 400 <= columns.min() and columns.max() < 800, "only the middle face's column changes"


def test_an_expression_slider_alone_lands_where_its_command_lands_it(server, tmp_path):
    """A smile alone lands below the eyes (catalogue regions): the page draws it there too, pixel for pixel."""
    shutil.copy(PHOTOS / "generated-14.jpg", tmp_path / "me.jpg")
    opened = server.upload((tmp_path / "me.jpg").read_bytes(), "me.jpg")[1]
    weights = {"attr-smile": 1.0}
    status, chosen = server.json("POST", "/api/face", {"session": opened["session"], "face": 1, "weights": weights})
    assert status == 200 and "smile" in chosen["command"], chosen
    status, body = server.request("GET", "/api/download?" + urlencode({"session": opened["session"],
                                                                       "weights": json.dumps(weights)}))
    assert status == 200
    run_command(chosen["command"], tmp_path)
    assert np.array_equal(pixels(body), pixels(tmp_path / "me-edited.png"))


def test_attributes_drawn_differently_are_drawn_as_their_command_draws_them(server, tmp_path):
    """Glasses (the eye band, the model's own decoder) and less smile (the mouth moved, the tuned decoder): the
    download is the command's output pixel for pixel, and a strip along one of them draws every value."""
    shutil.copy(PHOTOS / "generated-14.jpg", tmp_path / "me.jpg")
    opened = server.upload((tmp_path / "me.jpg").read_bytes(), "me.jpg")[1]
    weights = {"attr-glasses": 1.0, "attr-smile": -1.0}
    status, chosen = server.json("POST", "/api/face", {"session": opened["session"], "face": 1, "weights": weights})
    assert status == 200 and "glasses" in chosen["command"] and "smile" in chosen["command"], chosen
    status, body = server.request("GET", "/api/download?" + urlencode({"session": opened["session"],
                                                                       "weights": json.dumps(weights)}))
    assert status == 200
    run_command(chosen["command"], tmp_path)
    assert np.array_equal(pixels(body), pixels(tmp_path / "me-edited.png"))
    status, answer = server.json("POST", "/api/strip", {"session": opened["session"], "weights": weights,
                                                        "key": "attr-smile"})
    assert status == 200 and len(answer["values"]) == 7


def test_a_group_photo_starts_on_its_largest_face_as_arith_does(server):
    canvas = Image.new("RGB", (800, 500), (90, 110, 90))
    canvas.paste(Image.open(PHOTOS / "astronaut.jpg").convert("RGB").resize((240, 240)), (20, 130))
    canvas.paste(Image.open(PHOTOS / "generated-14.jpg").convert("RGB").resize((500, 500)), (300, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    status, opened = server.upload(buffer.getvalue(), "two.png")
    assert status == 200 and len(opened["faces"]) == 2 and opened["chosen"] == 2
    assert "--face 2" in opened["command"]


def test_a_traversal_strip_shows_the_slider_at_seven_values(server):
    opened = server.upload((PHOTOS / "generated-14.jpg").read_bytes(), "generated-14.jpg")[1]
    status, answer = server.json("POST", "/api/strip", {"session": opened["session"], "weights": {},
                                                        "key": "z1-pc1"})
    assert status == 200 and answer["values"] == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    strip = pixels(__import__("base64").b64decode(answer["image"].split(",", 1)[1]))
    tiles = [strip[2:-2, 2 + step * 162:step * 162 + 162] for step in range(7)]  # 160-pixel tiles, 2 apart
    assert not np.array_equal(tiles[0], tiles[-1])


def test_the_photo_named_on_the_command_line_opens_by_its_full_path(tmp_path):
    shutil.copy(PHOTOS / "generated-14.jpg", tmp_path / "mine.jpg")
    running = Server(str(tmp_path / "mine.jpg"))
    try:
        assert running.json("GET", "/api/info")[1]["given"] is True
        status, opened = running.json("POST", "/api/open?given=1")
        assert status == 200 and opened["command"].startswith(f"facealgebra arith {tmp_path / 'mine.jpg'} ")
    finally:
        running.stop()


def test_ctrl_c_stops_the_server_cleanly():
    running = Server()
    assert running.json("GET", "/api/info")[0] == 200
    result = running.stop()
    assert result.returncode == 0 and "Traceback" not in result.stderr and "stopped" in result.stderr


# ---- the sliders ----------------------------------------------------------------------------------------------
def test_principal_axes_are_the_codes_spread_one_standard_deviation_long():
    from facealgebra.explore.controls import principal_axes

    rng = np.random.default_rng(0)
    rotation = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    codes = (rng.normal(size=(20_000, 4)) * [3.0, 2.0, 1.0, 0.5]) @ rotation.T
    axes = principal_axes(codes.astype(np.float32))
    assert np.allclose(np.linalg.norm(axes, axis=1), [3.0, 2.0, 1.0, 0.5], rtol=0.03)
    assert np.allclose(np.abs(axes / np.linalg.norm(axes, axis=1, keepdims=True) @ rotation), np.eye(4), atol=0.03)


def test_each_direction_file_moves_one_layer_by_the_spread_of_the_training_faces(tiny_model, tmp_path):
    from facealgebra.checkpoint import load_model
    from facealgebra.explore.controls import find_controls
    from facealgebra.latents import Latents

    loaded = load_model(str(tiny_model))
    controls = find_controls(loaded, tmp_path)
    assert controls.directions_from == "the codes of 64 training images (synthetic:64)"
    directions = [control for control in controls.sliders if control.group != "attributes"]
    assert [control.key for control in directions] == ["z1-pc1", "z1-pc2", "z2-pc1", "z2-pc2"]
    for control in directions:
        code = Latents.load(control.term)
        layer = int(control.group[1:])
        assert code.fingerprint == loaded.fingerprint and len(code) == 1
        assert all(np.any(z) == (index == layer) for index, z in enumerate(code.layers, start=1)), control.key


def test_prior_draws_stand_in_when_the_training_faces_cannot_be_read(tiny_model, tmp_path):
    import dataclasses

    from facealgebra.checkpoint import load_model
    from facealgebra.explore.controls import find_controls

    loaded = load_model(str(tiny_model))
    moved = dataclasses.replace(loaded, training={**loaded.training, "data": f"folder:{tmp_path / 'gone'}"})
    assert "prior draws" in find_controls(moved, tmp_path / "directions").directions_from


def test_a_photo_model_whose_training_frames_do_not_ship_takes_the_celeba_photos(tmp_path):
    """The bundled faces-large was trained from a folder of frames that does not ship: its axes come from the
    packaged CelebA training photos, not from random directions, and directions an older run made from prior
    draws are made again."""
    import dataclasses

    from facealgebra.checkpoint import load_model
    from facealgebra.explore.controls import find_controls

    loaded = load_model("faces-large")
    assert loaded.training["data"].startswith("folder:")
    no_template = dataclasses.replace(loaded, preprocess={key: value for key, value in loaded.preprocess.items()
                                                          if key != "template"})
    assert "prior draws" in find_controls(no_template, tmp_path).directions_from
    assert find_controls(loaded, tmp_path).directions_from == "the codes of 897 CelebA training photos " \
                                                              "(celeba-sample)"


# ---- the page in a real browser --------------------------------------------------------------------------------
def browser(downloads: Path):
    """Headless chromium through its Debian driver, named by path so that selenium never downloads one."""
    if not (shutil.which("chromium") and Path(CHROMEDRIVER).exists()):
        # CI installs them (.ci/run): there a missing browser is a failure, not a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def test_the_page_edits_an_uploaded_photo_and_its_command_gives_the_download(server, tmp_path):
    """Upload, move a layer slider and an attribute slider, download; the shown command gives the same pixels;
    then a file that is no photo gets its message on the page."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = browser(downloads)  # (skips the test when chromium or selenium is missing)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    shutil.copy(PHOTOS / "generated-14.jpg", tmp_path / "me.jpg")
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(server.url)
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "input[data-key^='attr-']"))
        driver.find_element(By.ID, "file").send_keys(str(tmp_path / "me.jpg"))
        command = driver.find_element(By.ID, "command")
        wait.until(lambda page: command.text.startswith("facealgebra arith me.jpg"))
        after = driver.find_element(By.ID, "after")

        def move(slider_key: str, presses: int) -> None:
            """Move a slider by keyboard, as a person would, and wait for the picture to follow."""
            before = after.get_attribute("src")
            driver.find_element(By.CSS_SELECTOR, f"input[data-key='{slider_key}']").send_keys(Keys.RIGHT * presses)
            wait.until(lambda page: page.find_element(By.TAG_NAME, "body").get_attribute("data-busy") == "false"
                       and slider_key.removeprefix("attr-") in command.text)
            assert after.get_attribute("src") != before, f"moving {slider_key} left the picture as it was"

        move("z2-pc1", 20)  # 20 steps of 0.05
        attribute = driver.find_element(By.CSS_SELECTOR, "input[data-key^='attr-']").get_attribute("data-key")
        move(attribute, 10)
        shown = command.text
        assert "+ '1*" in shown and "+ '0.5*" in shown and shown.endswith("-o me-edited.png"), shown
        assert not driver.find_element(By.ID, "message").is_displayed()
        driver.find_element(By.ID, "download").click()
        wait.until(lambda page: (downloads / "me-edited.png").exists())
        (tmp_path / "notes.jpg").write_text("not a photo")
        driver.find_element(By.ID, "file").send_keys(str(tmp_path / "notes.jpg"))
        message = driver.find_element(By.ID, "message")
        wait.until(lambda page: message.is_displayed())
        assert message.text == "notes.jpg: not an image Pillow can read"
        assert command.text == shown, "a bad upload leaves the open photo as it was"
    finally:
        driver.quit()
    run_command(shown, tmp_path)
    assert np.array_equal(pixels(downloads / "me-edited.png"), pixels(tmp_path / "me-edited.png"))
    assert not np.array_equal(pixels(tmp_path / "me-edited.png"), pixels(tmp_path / "me.jpg"))
