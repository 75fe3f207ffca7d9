"""The official openai, anthropic and ollama SDKs through Tollgate to a real llama.cpp server.

Run by LlamaConformanceTests.swift, which starts llama-server (Gemma 3 270M) behind the gateway as
an OpenAI-compatible provider (llama-openai) and as an Anthropic provider (llama-anthropic) and passes:
  TG_URL    the proxy's base URL
  TG_KEY    an ordinary key
  TG_MODEL  the model's name at the server
Each SDK asks each provider kind once whole and once streamed; prints one `ok` line per check.
"""
import os
import sys

import anthropic
import ollama
import openai

URL = os.environ["TG_URL"]
KEY = os.environ["TG_KEY"]
MODEL = os.environ["TG_MODEL"]
PROMPT = "Say hello to Tollgate."
MAX = 8


def check(name, ok, detail=""):
    if not ok:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok {name}")


oa = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=120)
an = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0, timeout=120)
ol = ollama.Client(host=URL, headers={"Authorization": "Bearer " + KEY}, timeout=120)

for provider in ["llama-openai", "llama-anthropic"]:
    model = f"{provider}/{MODEL}"
    messages = [{"role": "user", "content": PROMPT}]

    r = oa.chat.completions.create(model=model, messages=messages, max_tokens=MAX)
    check(f"openai whole via {provider}", bool(r.choices[0].message.content) and r.usage.prompt_tokens > 0, r)
    parts, usage = [], None
    for chunk in oa.chat.completions.create(model=model, messages=messages, max_tokens=MAX, stream=True, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    check(f"openai stream via {provider}", bool("".join(parts)) and usage is not None and usage.completion_tokens > 0, (parts, usage))

    m = an.messages.create(model=model, max_tokens=MAX, messages=messages)
    check(f"anthropic whole via {provider}", bool(m.content) and bool(m.content[0].text) and m.usage.input_tokens > 0, m)
    with an.messages.stream(model=model, max_tokens=MAX, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    check(f"anthropic stream via {provider}", bool(text) and final.usage.output_tokens > 0, final)

    c = ol.chat(model=model, messages=messages, options={"num_predict": MAX})
    check(f"ollama whole via {provider}", bool(c.message.content) and c.eval_count and c.eval_count > 0, c)
    pieces, last = [], None
    for part in ol.chat(model=model, messages=messages, options={"num_predict": MAX}, stream=True):
        pieces.append(part.message.content or "")
        last = part
    check(f"ollama stream via {provider}", bool("".join(pieces)) and last.done and last.eval_count > 0 and last.eval_duration > 0, last)
