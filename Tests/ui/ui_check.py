"""Drives the admin UI in a real headless Chromium (selenium), against a test gateway.

Environment: TG_ADMIN (admin listener URL), TG_PROXY (proxy URL), TG_PASSWORD, TG_SHOTS (folder for
screenshots), TG_MOCK (the mock upstream's URL, added as a provider). Prints "ok <step>" per step; any failed check raises (exit status 1).
"""
import json
import os
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ADMIN = os.environ["TG_ADMIN"].rstrip("/")
PROXY = os.environ["TG_PROXY"].rstrip("/")
PASSWORD = os.environ["TG_PASSWORD"]
SHOTS = os.environ["TG_SHOTS"]
MOCK = os.environ["TG_MOCK"].rstrip("/")
os.makedirs(SHOTS, exist_ok=True)


def ok(step):
    print("ok " + step, flush=True)


def admin_api(method, path, body=None):
    """The JSON admin API with the admin password (for what the browser test does not click)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ADMIN + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + PASSWORD, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def openai_chat(key, model):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(PROXY + "/v1/chat/completions", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def proxy_chat(key, model="llama3.2"):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}).encode()
    req = urllib.request.Request(PROXY + "/api/chat", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("x-tollgate-model"), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None, e.read().decode()


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]:
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
# Pages reload after a change: elements found before the reload go stale, which only means "not yet".
wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))
requested = []


def shot(name):
    driver.save_screenshot(os.path.join(SHOTS, name + ".png"))


def collect_requests():
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])


def submit(form_id):
    driver.find_element(By.CSS_SELECTOR, "#" + form_id + " button[type=submit]").click()


def submit_and_reload(form_id):
    """Submits a form whose success reloads the page, and waits for the new page: the old one
    (with the values just typed) is marked, and only an unmarked, fully loaded document counts."""
    driver.execute_script("window.__beforeSave = true")
    submit(form_id)

    def reloaded(d):
        try:
            return d.execute_script("return !window.__beforeSave && document.readyState === 'complete'")
        except WebDriverException:
            return False
    wait.until(reloaded)


def fill(form_id, name, value):
    el = driver.find_element(By.CSS_SELECTOR, "#" + form_id + " [name=" + name + "]")
    el.clear()
    el.send_keys(value)


def text_of(element_id, by=By.ID):
    """The element's text, or "" while the page is being replaced (a reload after a change)."""
    try:
        return driver.find_element(by, element_id).text
    except WebDriverException as e:
        if "does not belong to the document" in str(e) or isinstance(e, (StaleElementReferenceException, NoSuchElementException)):
            return ""
        raise


def value_of(selector):
    """A field's value read in one script call, or None: the page is replaced after a save, and a
    node found before the reload can vanish between a find and a separate attribute read."""
    try:
        return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.value : null", selector)
    except WebDriverException:
        return None


def wait_page(path_part):
    wait.until(lambda d: path_part in d.current_url and d.execute_script("return document.readyState") == "complete")


try:
    # 1. Without a session: the login page; a wrong password is refused with a message.
    driver.get(ADMIN + "/ui/")
    wait_page("/ui/login")
    shot("01-login")
    pw = driver.find_element(By.NAME, "password")
    pw.send_keys("wrong-password-123")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".notice")))
    assert "wrong" in driver.find_element(By.CSS_SELECTOR, ".notice").text.lower()
    pw.clear()
    pw.send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: d.current_url.rstrip("/").endswith("/ui"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".cards")))
    shot("02-dashboard-empty")
    ok("login")

    # 2. A user, then a key for it: the plaintext is shown once.
    driver.get(ADMIN + "/ui/users")
    fill("create-user", "name", "lab")
    fill("create-user", "daily_tokens", "100000")
    submit("create-user")
    wait.until(lambda d: "/ui/users/usr_" in d.current_url)
    shot("03-user")
    ok("user created")
    driver.get(ADMIN + "/ui/keys")
    fill("create-key", "name", "alice")
    driver.find_element(By.CSS_SELECTOR, "#create-key select[name=user_id] option:nth-child(2)").click()
    fill("create-key", "tags", "course-101")
    submit("create-key")
    wait.until(EC.visibility_of_element_located((By.ID, "revealed")))
    key = driver.find_element(By.ID, "new-key").text.strip()
    assert key.startswith("tg-"), key
    shot("04-key-created")
    driver.get(ADMIN + "/ui/keys")
    assert key not in driver.page_source and key[-12:] not in driver.page_source
    assert "alice" in driver.page_source and "lab" in driver.page_source
    key_link = driver.find_element(By.LINK_TEXT, "alice").get_attribute("href")
    ok("key created, plaintext shown once")

    # 3. The key through the proxy; the request shows in usage and in the dashboard chart.
    status, served, _ = proxy_chat(key)
    assert status == 200, status
    key_id = key[len("tg-"):len("tg-") + 10]
    deadline = time.time() + 15
    while True:
        driver.get(ADMIN + "/ui/usage?key_id=" + key_id)
        rows = driver.find_elements(By.XPATH, "//h2[text()='Recent requests']/following::table[1]//tbody/tr")
        if rows or time.time() > deadline:
            break
        time.sleep(0.3)
    assert len(rows) == 1 and "/api/chat" in rows[0].text, [r.text for r in rows]
    shot("05-usage")
    driver.get(ADMIN + "/ui/")
    chart = driver.find_element(By.CSS_SELECTOR, "svg.chart")
    assert chart.get_attribute("data-total") == "1", chart.get_attribute("aria-label")
    shot("06-dashboard-with-request")
    ok("request in usage and dashboard")

    # 4. The model lock from the dashboard changes the served model; and off again.
    fill("lock-form", "force_model", "qwen3:8b")
    submit("lock-form")
    wait.until(EC.presence_of_element_located((By.ID, "lock-model")))
    shot("07-model-lock-on")
    status, served, _ = proxy_chat(key)
    assert status == 200 and served == "qwen3:8b", (status, served)
    driver.find_element(By.ID, "lock-off").click()
    wait.until(EC.presence_of_element_located((By.ID, "lock-form")))
    status, served, _ = proxy_chat(key)
    assert status == 200 and served == "llama3.2", (status, served)
    ok("model lock toggled")

    # 5. A quota changed on the key's page: the next request over it gets 429.
    driver.get(key_link)
    fill("edit-key", "daily_requests", "3")
    submit_and_reload("edit-key")
    wait.until(lambda d: value_of("#edit-key [name=daily_requests]") == "3"
               and "/ 3 requests" in d.page_source)
    shot("08-key-quota")
    status, _, body = proxy_chat(key)
    assert status == 429 and "quota" in str(body), (status, body)
    ok("quota enforced")

    # 5b. A spending limit and a five-minute rate window on the same page: the spend bar shows, and
    # the model, which has no price, is refused under the limit.
    driver.get(key_link)
    fill("edit-key", "daily_cost_usd", "5.00")
    fill("edit-key", "requests_per", "100/5m")
    submit_and_reload("edit-key")
    wait.until(lambda d: value_of("#edit-key [name=daily_cost_usd]") == "5.00"
               and value_of("#edit-key [name=requests_per]") == "100/5m"
               and "$0.00 / $5.00" in d.page_source)
    assert driver.find_elements(By.CSS_SELECTOR, "meter.spend"), "no spend bar"
    shot("08b-key-spend")
    status, _, body = proxy_chat(key)
    assert status == 403 and "no known price" in str(body), (status, body)
    ok("spending limit shown and enforced")

    # 6. Revoke with confirmation: the key gets 401.
    driver.find_element(By.ID, "revoke").click()
    wait.until(EC.alert_is_present())
    driver.switch_to.alert.accept()
    wait.until(lambda d: "revoked" in d.page_source)
    shot("09-key-revoked")
    status, _, _ = proxy_chat(key)
    assert status == 401, status
    ok("revoked")

    # 7. A provider checked from the UI shows its latency.
    driver.get(ADMIN + "/ui/providers")
    driver.find_element(By.XPATH, "//button[text()='Check now']").click()
    wait.until(lambda d: text_of("//table[1]//tbody/tr[1]/td[6]", By.XPATH).endswith(" ms"))
    ok("provider checked")

    # 7b. Add a provider (an OpenAI-compatible face of the mock), use it, test it, edit it, remove it.
    fill("add-provider", "name", "lab-cloud")
    fill("add-provider", "base_url", MOCK + "/v1")
    fill("add-provider", "api_key", "sk-ui-provider-key-0042")
    driver.find_element(By.CSS_SELECTOR, "#add-provider [name=allow_private]").click()
    submit("add-provider")
    wait_page("/ui/providers/lab-cloud")
    wait.until(EC.presence_of_element_located((By.ID, "edit-provider")))
    assert "sk-ui-provider-key" not in driver.page_source
    assert "with a key" in driver.page_source
    shot("16-provider-added")
    other = admin_api("POST", "/api/api-keys", {"name": "provider-check"})["key"]
    status = openai_chat(other, "lab-cloud/gpt-4o-mini")
    assert status == 200, status
    driver.find_element(By.XPATH, "//button[text()='Test now']").click()
    wait.until(lambda d: " ms," in text_of("provider-state"))
    fill("edit-provider", "max_concurrent", "4")
    submit_and_reload("edit-provider")
    wait.until(lambda d: value_of("#edit-provider [name=max_concurrent]") == "4")
    assert [p["max_concurrent"] for p in admin_api("GET", "/api/providers") if p["name"] == "lab-cloud"] == [4]
    driver.find_element(By.XPATH, "//button[text()='Remove provider']").click()
    wait.until(EC.alert_is_present())
    driver.switch_to.alert.accept()
    wait.until(lambda d: d.current_url.endswith("/ui/providers"))
    assert [p["name"] for p in admin_api("GET", "/api/providers")] == ["ollama"]
    ok("provider added, used, tested, edited and removed")

    # 8. The other pages render; a phone-sized window works too.
    for path, name in [("/ui/providers", "10-providers"), ("/ui/settings", "11-settings"), ("/ui/help", "12-help"), ("/ui/users", "13-users")]:
        driver.get(ADMIN + path)
        wait.until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
        assert driver.find_elements(By.CSS_SELECTOR, "main h1"), path
        shot(name)
    driver.set_window_size(390, 844)
    for path, name in [("/ui/", "14-phone-dashboard"), ("/ui/keys", "15-phone-keys")]:
        driver.get(ADMIN + path)
        wait.until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, (path, width)
        shot(name)
    ok("pages and phone width")

    # 9. Log out: the pages need a login again.
    driver.set_window_size(1280, 1000)
    driver.get(ADMIN + "/ui/")
    driver.find_element(By.CSS_SELECTOR, "header button[data-api]").click()
    wait_page("/ui/login")
    driver.get(ADMIN + "/ui/keys")
    wait_page("/ui/login")
    ok("logout")

    # 10. Every request the browser made went to the gateway's own origin.
    collect_requests()
    foreign = [u for u in requested if not (u.startswith(ADMIN + "/") or u.startswith("data:"))]
    assert requested and not foreign, foreign
    ok("only own origin (%d requests)" % len(requested))
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and "401" not in e.get("message", "")]
    assert not errors, errors
    ok("no script errors")
except Exception:
    shot("failure")
    print("failed at " + driver.current_url + ": " + driver.find_element(By.TAG_NAME, "body").text[:2000], flush=True)
    raise
finally:
    driver.quit()
