"""Changes the admin password from the settings page in a real headless Chromium (AdminPasswordTests).

Environment: TG_ADMIN (admin listener URL), TG_PASSWORD (the current password), TG_NEW (the new one).
Logs in, changes the password with the settings page's form, lands on the login page (the session is
over), finds the old password refused and the new one let in. Prints "ok <step>" per step.
"""
import os

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ADMIN = os.environ["TG_ADMIN"].rstrip("/")
OLD, NEW = os.environ["TG_PASSWORD"], os.environ["TG_NEW"]

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]:
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


def login(password):
    driver.get(ADMIN + "/ui/login")
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    field = driver.find_element(By.NAME, "password")
    field.clear()
    field.send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


try:
    login(OLD)
    wait.until(lambda d: d.current_url.rstrip("/").endswith("/ui"))
    print("ok logged in", flush=True)
    driver.get(ADMIN + "/ui/settings")
    form = wait.until(EC.presence_of_element_located((By.ID, "password-form")))
    form.find_element(By.NAME, "current_password").send_keys(OLD)
    form.find_element(By.NAME, "new_password").send_keys(NEW)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/ui/login" in d.current_url)
    # The session ended with the change: the pages ask for a login again.
    driver.get(ADMIN + "/ui/keys")
    wait.until(lambda d: "/ui/login" in d.current_url)
    print("ok changed, session over", flush=True)
    login(OLD)
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".notice")))
    assert "/ui/login" in driver.current_url
    print("ok old password refused", flush=True)
    login(NEW)
    wait.until(lambda d: d.current_url.rstrip("/").endswith("/ui"))
    print("ok new password works", flush=True)
finally:
    driver.quit()
