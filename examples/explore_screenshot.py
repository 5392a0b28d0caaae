"""The README's picture of `facealgebra explore`: docs/explore.png, taken in headless chromium.

    python examples/explore_screenshot.py        # needs chromium, chromium-driver (apt) and selenium (pip)

Starts the explorer on the bundled `faces` model, uploads photos/generated-14.jpg (as me.jpg), moves two sliders
(z1 pc1 and the smile vector), shows before and after side by side, draws z1 pc1's traversal strip, and saves a
screenshot of the page.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "explore.png"


def main() -> None:
    server = subprocess.Popen([sys.executable, "-m", "facealgebra", "explore", "--no-browser", "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1250",
                     "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as folder:
            photo = Path(folder) / "me.jpg"
            shutil.copy(HERE / "photos" / "generated-14.jpg", photo)
            wait = WebDriverWait(driver, 60)
            driver.get(url)
            wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "input[data-key='attr-smile']"))
            driver.find_element(By.ID, "file").send_keys(str(photo))
            wait.until(lambda page: "me.jpg" in page.find_element(By.ID, "command").text)
            for key, value in (("z1-pc1", 1.5), ("attr-smile", 0.8)):
                slider = driver.find_element(By.CSS_SELECTOR, f"input[data-key='{key}']")
                driver.execute_script("arguments[0].value = arguments[1]; "
                                      "arguments[0].dispatchEvent(new Event('input'))", slider, value)
                wait.until(lambda page: page.find_element(By.TAG_NAME, "body").get_attribute("data-busy") == "false"
                           and key.removeprefix("attr-") in page.find_element(By.ID, "command").text)
            driver.find_element(By.CSS_SELECTOR, "[data-view='side-by-side']").click()
            driver.find_element(By.ID, "strip-button").click()
            wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#strip img"))
            driver.save_screenshot(str(OUT))
        print(f"wrote {OUT}")
    finally:
        driver.quit()
        server.send_signal(signal.SIGINT)
        server.wait(30)


if __name__ == "__main__":
    main()
