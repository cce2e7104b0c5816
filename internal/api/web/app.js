// The document service's page: everything goes through the same JSON API
// that scripts use. A person signs in with the identity provider: docsvc
// runs that flow and keeps the session in an HttpOnly cookie this script
// cannot read; each call carries X-Requested-With, without which docsvc
// ignores the cookie. A pasted API token is kept in this tab's session
// storage only.
"use strict";
const $ = (s) => document.querySelector(s);
let token = sessionStorage.getItem("docsvc-token") || "";
let timer = null;

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}), "X-Requested-With": "docsvc" };
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(path, { ...opts, headers, credentials: "same-origin" });
  if (res.status === 401) {
    signedOut(token ? "That token was not accepted." : "");
    throw new Error("unauthenticated");
  }
  const body = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(body && body.error ? body.error : "HTTP " + res.status);
  return body;
}

function signedOut(msg) {
  token = ""; sessionStorage.removeItem("docsvc-token");
  $("#app").hidden = true; $("#signin").hidden = false; $("#who").textContent = "";
  $("#signin-error").textContent = msg || "";
  clearTimeout(timer);
}

// signOut ends a token's use here, or the session here and then, by
// following docsvc's answer, at the identity provider.
async function signOut() {
  if (token) { signedOut(""); return; }
  let next = "/";
  try {
    const res = await fetch("/auth/logout", { method: "POST", headers: { "X-Requested-With": "docsvc" }, credentials: "same-origin" });
    if (res.ok) next = (await res.json()).redirect || "/";
  } catch (e) { /* the cookie may remain until it expires; show the page signed out anyway */ }
  signedOut("");
  location.assign(next);
}

async function signIn(t) {
  token = t;
  try { await api("/v1/documents?limit=1"); } catch (e) { return; }
  if (token) sessionStorage.setItem("docsvc-token", token);
  $("#who").textContent = token ? "API token" : "Signed in";
  $("#signin").hidden = true; $("#app").hidden = false; $("#signin-error").textContent = "";
  refresh();
}

async function start() {
  let cfg = { sign_in: false };
  try { cfg = await (await fetch("/auth/config")).json(); } catch (e) { /* offer tokens only */ }
  if (cfg.sign_in) {
    $("#provider").hidden = false;
    $("#provider-host").textContent = new URL(cfg.issuer).host;
    $("#login").onclick = () => location.assign(cfg.login);
  }
  // A session cookie, if any, decides without a token.
  signIn(token);
}

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }

async function refresh() {
  clearTimeout(timer);
  let data;
  try { data = await api("/v1/documents?limit=50"); } catch (e) { return; }
  const tbody = $("#docs tbody");
  tbody.replaceChildren();
  let pending = false;
  for (const d of data.documents) {
    const tr = document.createElement("tr");
    tr.dataset.id = d.id;
    tr.append(cell(d.filename || d.id), cell(d.status + (d.error ? " — " + d.error : ""), "status " + d.status),
      cell(Math.ceil(d.size_bytes / 1024) + " KiB"), cell(new Date(d.created_at).toLocaleString()));
    const act = document.createElement("td");
    if (d.status === "succeeded") {
      const b = document.createElement("button"); b.textContent = "Result"; b.className = "show-result";
      b.onclick = () => showResult(d); act.append(b);
    }
    const del = document.createElement("button"); del.textContent = "Delete"; del.className = "secondary";
    del.onclick = async () => { await api("/v1/documents/" + d.id, { method: "DELETE" }); $("#result").hidden = true; refresh(); };
    act.append(" ", del);
    tr.append(act);
    tbody.append(tr);
    if (d.status === "queued" || d.status === "processing") pending = true;
  }
  timer = setTimeout(refresh, pending ? 1000 : 5000);
}

async function showResult(d) {
  const r = await api("/v1/documents/" + d.id + "/result");
  $("#result-title").textContent = d.filename || d.id;
  $("#result-summary").textContent = r.summary;
  $("#result-keywords").replaceChildren(...r.keywords.map((k) => { const li = document.createElement("li"); li.textContent = k; return li; }));
  $("#result-pages").textContent = "(" + r.pages + (r.pages === 1 ? " page)" : " pages)");
  $("#result-text").textContent = r.text;
  $("#result").hidden = false;
}

$("#token-form").onsubmit = (e) => { e.preventDefault(); signIn($("#token").value.trim()); };
$("#signout").onclick = () => signOut();
$("#upload-form").onsubmit = async (e) => {
  e.preventDefault();
  const f = $("#file").files[0];
  if (!f) return;
  const fd = new FormData(); fd.append("file", f);
  $("#upload-status").textContent = "Uploading…";
  try {
    const d = await api("/v1/documents", { method: "POST", body: fd });
    $("#upload-status").textContent = "Queued as " + d.id + ".";
    $("#file").value = "";
  } catch (err) { $("#upload-status").textContent = "Upload refused: " + err.message; }
  refresh();
};
start();
