"""Drives the admin console in headless Chromium (Selenium + chromedriver).

Input (stdin, JSON): {"url", "token", "secrets": [...], "explain_token", "screenshots": dir}.
Loads the console, waits for every panel to be populated from a running gateway, submits the
explain form, checks that no secret appears in the page or in the console's API answers, and
saves a screenshot of each panel. Prints a JSON report; exits 1 with the reason on a failure.
"""
import base64
import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

args = json.load(sys.stdin)
credential = "Basic " + base64.b64encode(b"admin:" + args["token"].encode()).decode()
options = Options()
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--window-size=1400,1500"):
    options.add_argument(flag)
options.binary_location = args.get("chromium", "/usr/bin/chromium")
driver = webdriver.Chrome(service=Service(args.get("chromedriver", "/usr/bin/chromedriver")),
                          options=options)
report = {}
try:
    # The admin credential on every request the page makes, as a browser that was asked once.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": credential}})
    driver.get(args["url"] + "/console")
    wait = WebDriverWait(driver, 60)

    def rows(tbody):
        # Read in one script: the tables are rebuilt every few seconds, so element handles
        # taken one by one could go stale in between.
        return driver.execute_script(
            "return [...document.querySelectorAll('#' + arguments[0] + ' tr')]"
            ".map(tr => [...tr.children].map(td => td.textContent))", tbody)

    def populated(tbody, needle):
        return lambda _: any(needle in " | ".join(r) for r in rows(tbody))

    expectations = {
        "routes": "/internal",
        "issuers": "jwks",
        "providers": "valid",
        "tokens": "billing",
        "refusals": "service not allowed",
        "traffic": "/internal",
        "limited": "client 127.0.0.1",
    }
    for tbody, needle in expectations.items():
        try:
            wait.until(populated(tbody, needle))
        except Exception:
            raise SystemExit(f"panel {tbody} never showed {needle!r}: {rows(tbody)}")
        report[tbody] = rows(tbody)
    # The traffic panel needs two samples for a rate: wait for a non-zero one.
    wait.until(lambda _: any(r and r[0] == "/internal" and float(r[1] or 0) > 0 for r in rows("traffic")))
    report["traffic"] = rows("traffic")

    # A request that matched no route is not "0 refused": its 404s are counted by status.
    try:
        wait.until(lambda _: any(r and r[0] == "(no route)" and "404: " in r[4] for r in rows("traffic")))
    except Exception:
        raise SystemExit(f"the no-route row shows no 404s: {rows('traffic')}")
    report["traffic"] = rows("traffic")
    report["traffic_header"] = driver.execute_script(
        "return [...document.querySelectorAll('#panel-traffic th')].map(th => th.textContent)")

    # Laid out for a 1400 px window: no panel scrolls sideways, no time breaks over two lines.
    layout = driver.execute_script("""
        const overflowing = [...document.querySelectorAll('section')]
            .filter((s) => s.scrollWidth > s.clientWidth)
            .map((s) => s.id + ' ' + s.scrollWidth + '>' + s.clientWidth);
        const wrapped = [...document.querySelectorAll('td.time')].filter((td) => {
            const range = document.createRange();
            range.selectNodeContents(td);
            return range.getClientRects().length > 1;
        }).map((td) => td.textContent);
        return {overflowing, wrapped, times: document.querySelectorAll('td.time').length};
    """)
    if layout["overflowing"] or layout["wrapped"] or layout["times"] == 0:
        raise SystemExit(f"layout at 1400 px: {layout}")

    driver.find_element(By.ID, "explain-target").clear()
    driver.find_element(By.ID, "explain-target").send_keys("/internal/x")
    driver.find_element(By.ID, "explain-token").send_keys(args["explain_token"])
    driver.find_element(By.ID, "explain-submit").click()
    wait.until(lambda _: driver.find_element(By.ID, "explain-verdict").text != "")
    report["verdict"] = driver.find_element(By.ID, "explain-verdict").text
    if driver.execute_script("return document.getElementById('explain-token').value"):
        raise SystemExit("the explained token stays in the form")
    report["explain_steps"] = rows("explain-steps")

    # No secret anywhere: the page as rendered, and every API answer the console reads.
    texts = {"page": driver.page_source, "rendered": driver.find_element(By.TAG_NAME, "body").text}
    for path in ("/console/api/overview", "/metrics"):
        request = urllib.request.Request(args["url"] + path, headers={"Authorization": credential})
        texts[path] = urllib.request.urlopen(request).read().decode()
    request = urllib.request.Request(
        args["url"] + "/console/api/explain",
        data=json.dumps({"target": "/internal/x", "token": args["explain_token"]}).encode(),
        headers={"Authorization": credential, "x-tollgate-console": "1",
                 "content-type": "application/json"})
    texts["explain"] = urllib.request.urlopen(request).read().decode()
    for name, text in texts.items():
        for secret in args["secrets"]:
            if secret in text:
                raise SystemExit(f"a secret ({secret[:6]}...) appears in {name}")
    report["checked_for_secrets"] = sorted(texts)

    shots = args.get("screenshots")
    if shots:
        os.makedirs(shots, exist_ok=True)
        for panel in ("traffic", "refusals", "limited", "routes", "issuers", "providers", "tokens", "explain"):
            driver.find_element(By.ID, f"panel-{panel}").screenshot(os.path.join(shots, f"{panel}.png"))
        driver.save_screenshot(os.path.join(shots, "console.png"))
finally:
    driver.quit()
print(json.dumps(report))
