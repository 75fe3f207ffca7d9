/// The UI's stylesheet and script, served by the admin listener itself (no CDN, no build step).
enum Assets {
    static let css = """
        :root { --fg: #1d2330; --muted: #525b6b; --bg: #ffffff; --panel: #f3f5f8; --line: #d3d8e0; --accent: #1f5fbf;
          --ok: #196a3a; --warn: #8a5a00; --bad: #a8231d; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
        * { box-sizing: border-box; }
        body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45; }
        a { color: var(--accent); }
        a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #f0b400; outline-offset: 1px; }
        .skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 2; }
        header { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; padding: 10px 16px; background: #14213d; color: #fff; }
        header nav { display: flex; flex-wrap: wrap; gap: 4px 14px; flex: 1; }
        header a { color: #fff; text-decoration: none; padding: 2px 0; } header a[aria-current=page] { border-bottom: 2px solid #f0b400; }
        .brand { font-weight: 700; margin-right: 8px; }
        button.link { background: none; border: 1px solid #fff; color: #fff; padding: 3px 10px; }
        main { padding: 16px; max-width: 1200px; margin: 0 auto; }
        h1 { font-size: 1.5rem; margin: 4px 0 16px; } h2 { font-size: 1.15rem; margin: 24px 0 8px; }
        .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
        .card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
        .card b { display: block; font-size: 1.35rem; } .card span { color: var(--muted); font-size: .9rem; }
        .scroll { overflow-x: auto; }
        table { border-collapse: collapse; width: 100%; font-size: .92rem; }
        th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: var(--panel); } tr.link-row:hover { background: #eef3fb; }
        form.panel, section.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px; margin: 12px 0; }
        form.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 6px 14px; align-items: start; }
        form.grid button[type=submit] { margin-top: 28px; }
        label { display: block; font-weight: 600; font-size: .9rem; margin-top: 6px; }
        label.check { font-weight: 400; }
        input, select, textarea { width: 100%; padding: 6px 8px; border: 1px solid #8a93a3; border-radius: 4px; font: inherit; background: #fff; color: var(--fg); }
        input[type=checkbox] { width: auto; }
        small { color: var(--muted); display: block; overflow-wrap: anywhere; }
        button { font: inherit; padding: 6px 14px; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
        button.secondary { background: #fff; color: var(--accent); } button.danger { background: var(--bad); border-color: var(--bad); }
        .actions { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
        .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .8rem; font-weight: 600; color: #fff; }
        .badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.bad { background: var(--bad); } .badge.muted { background: var(--muted); }
        meter { width: 100%; height: 10px; display: block; }
        .count { display: block; font-size: .85rem; white-space: nowrap; } .count.over { color: var(--bad); font-weight: 700; }
        .notice { padding: 8px 12px; border-radius: 4px; background: #fdecea; color: var(--bad); border: 1px solid var(--bad); }
        .notice.good { background: #e8f5ec; color: var(--ok); border-color: var(--ok); }
        .secret { background: #fff8e1; border: 2px solid var(--warn); padding: 12px; border-radius: 6px; margin: 12px 0; }
        .secret code { font-size: 1rem; word-break: break-all; display: block; margin: 8px 0; }
        .chart { width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
        .chart .bar { fill: var(--accent); } .chart .axis { stroke: #8a93a3; } .chart text { fill: var(--muted); font-size: 11px; }
        .empty { color: var(--muted); }
        pre { background: var(--panel); padding: 10px; overflow-x: auto; border-radius: 4px; }
        body.bare main { max-width: 420px; margin-top: 10vh; }
        @media (max-width: 600px) { main { padding: 10px; } th, td { padding: 4px; } header { padding: 8px; } }
        """

    static let js = """
        "use strict";
        // Sends forms and buttons marked data-api="METHOD /path" to the admin API as JSON, with the CSRF token.
        const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
        async function call(method, path, body) {
          const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf() } };
          if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
          const r = await fetch(path, init);
          let data = null;
          try { data = await r.json(); } catch (e) { data = null; }
          if (!r.ok) {
            const fields = data && data.fields ? " (" + Object.entries(data.fields).map(([k, v]) => k + " " + v).join("; ") + ")" : "";
            throw new Error(((data && data.error) || r.status + " " + r.statusText) + fields);
          }
          return data;
        }
        function value(el) {
          const type = el.dataset.type || "string";
          if (type === "bool") return el.checked;
          const v = el.value.trim();
          if (v === "") return type === "list" && el.dataset.empty !== "null" ? [] : null;
          if (type === "int" || type === "number") return Number(v);
          if (type === "list") return v.split(",").map(s => s.trim()).filter(s => s !== "");
          if (type === "json") return JSON.parse(v);
          if (type === "date") return new Date(v + (v.length === 10 ? "T23:59:59Z" : "")).toISOString().replace(".000Z", "Z");
          return v;
        }
        function notice(text, good) {
          const n = document.querySelector(".notice");
          if (!n) { alert(text); return; }
          n.textContent = text; n.hidden = false; n.classList.toggle("good", !!good); n.focus && n.focus();
        }
        function after(el, data) {
          const then = el.dataset.then;
          if (then) { location.href = then.replace("{id}", data && data.id ? encodeURIComponent(data.id) : "").replace("{name}", data && data.name ? encodeURIComponent(data.name) : ""); return; }
          location.reload();
        }
        document.addEventListener("submit", async (event) => {
          const form = event.target;
          if (!form.dataset.api) return;
          event.preventDefault();
          const [method, path] = form.dataset.api.split(" ");
          const body = {};
          try {
            for (const el of form.elements) {
              if (!el.name || el.disabled) continue;
              const v = value(el);
              if (v === null && el.dataset.omitEmpty !== undefined) continue;
              // "weekly.from" fills body.weekly.from.
              const names = el.name.split(".");
              let into = body;
              for (const n of names.slice(0, -1)) into = into[n] = into[n] || {};
              into[names[names.length - 1]] = v;
            }
            const data = await call(method, path, body);
            if (form.dataset.reveal !== undefined && data && data.key) {
              const box = document.getElementById("revealed");
              box.querySelector("code").textContent = data.key;
              box.querySelector("a").href = "/ui/keys/" + encodeURIComponent(data.id);
              box.hidden = false; box.querySelector("button").focus(); form.reset();
              return;
            }
            after(form, data);
          } catch (err) { notice(err.message); }
        });
        document.addEventListener("click", async (event) => {
          const copy = event.target.closest("button[data-copy]");
          if (copy) {
            const text = document.getElementById(copy.dataset.copy).textContent;
            try { await navigator.clipboard.writeText(text); copy.textContent = "Copied"; } catch (e) { copy.textContent = "Select and copy"; }
            return;
          }
          const button = event.target.closest("button[data-api]");
          if (!button) return;
          if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
          const [method, path] = button.dataset.api.split(" ");
          try {
            const data = await call(method, path, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
            after(button, data);
          } catch (err) { notice(err.message); }
        });
        document.addEventListener("click", (event) => {
          const row = event.target.closest("tr[data-href]");
          if (row && !event.target.closest("a,button")) location.href = row.dataset.href;
        });
        document.addEventListener("keydown", (event) => {
          const row = event.target.closest && event.target.closest("tr[data-href]");
          if (row && event.key === "Enter") location.href = row.dataset.href;
        });
        """
}
