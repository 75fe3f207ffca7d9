"""The official openai and anthropic SDKs streaming through a Tollgate whose Ollama slot is taken:
each stream starts with `: queued position=N` comments and waits; once the slot is freed (by
FairQueueGatewayTests) both must parse their streams without error and bring back the mock's text.

Env: TG_URL (the proxy's base URL), TG_KEY (an ordinary key). Prints `ok <check>` per check.
"""
import os
import sys
import threading

import anthropic
import openai

URL = os.environ["TG_URL"]
KEY = os.environ["TG_KEY"]
FIVE = "tok0 tok1 tok2 tok3 tok4 "
results = {}


def via_openai():
    client = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model="llama3.2", stream=True, messages=[{"role": "user", "content": "queued openai"}]
    )
    results["openai"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def via_anthropic():
    client = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0, timeout=60)
    with client.messages.stream(
        model="llama3.2", max_tokens=50, messages=[{"role": "user", "content": "queued anthropic"}]
    ) as stream:
        results["anthropic"] = "".join(stream.text_stream)


def run(name, fn):
    try:
        fn()
    except Exception as e:  # reported below, with the SDK's own message
        results[name] = "error: %r" % e


threads = [threading.Thread(target=run, args=(n, f)) for n, f in (("openai", via_openai), ("anthropic", via_anthropic))]
for t in threads:
    t.start()
print("started", flush=True)
for t in threads:
    t.join(90)
failed = False
for name in ("openai", "anthropic"):
    if results.get(name) == FIVE:
        print("ok %s stream parsed after waiting in the queue" % name)
    else:
        print("FAIL %s: %r" % (name, results.get(name)))
        failed = True
sys.exit(1 if failed else 0)
