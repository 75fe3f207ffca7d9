"""The official openai SDK reading a stream whose key has always_stream_usage: the client does not
ask for stream_options.include_usage, yet the last chunk carries the usage, and the SDK parses it.

Env: TG_URL (the proxy's base URL), TG_KEY (a key with always_stream_usage). Prints `ok <check>`.
"""
import os

import openai

client = openai.OpenAI(base_url=os.environ["TG_URL"] + "/v1", api_key=os.environ["TG_KEY"], max_retries=0, timeout=60)
stream = client.chat.completions.create(model="llama3.2", stream=True, messages=[{"role": "user", "content": "usage please"}])
chunks = list(stream)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
usage = [c.usage for c in chunks if c.usage is not None]
assert text, "no text"
assert len(usage) == 1 and not chunks[-1].choices, (usage, chunks[-1])
assert usage[0].prompt_tokens > 0 and usage[0].completion_tokens > 0 and usage[0].total_tokens == usage[0].prompt_tokens + usage[0].completion_tokens, usage[0]
print("ok usage chunk parsed: %d prompt, %d completion" % (usage[0].prompt_tokens, usage[0].completion_tokens))
